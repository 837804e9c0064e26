"""Running a model: the forward pass, evaluate, predict, export, the layer table and run pictures."""
