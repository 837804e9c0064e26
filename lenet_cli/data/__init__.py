"""Datasets: MNIST-family IDX files through torchvision, and labelled image folders."""
