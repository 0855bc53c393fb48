"""mnist-cli: train 784->10 MNIST models with analytic gradients written out in numpy."""

__version__ = "0.1.0"
