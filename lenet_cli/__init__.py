"""lenet: train, evaluate, inspect and run LeNet-5 on MNIST-family digits."""

__version__ = "0.1.0"
