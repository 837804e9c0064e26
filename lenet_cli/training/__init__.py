"""Training: `fit` runs a whole run (data, recipe, epoch loop, run folder, reporters, resume)."""
