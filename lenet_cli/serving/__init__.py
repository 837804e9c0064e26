"""`lenet serve`: the FastAPI app, the server around it, dynamic batching and preprocessing processes."""
