"""Model files: the checkpoint format, ONNX and torch.export files, what a file says about itself, and the
model lenet ships."""
