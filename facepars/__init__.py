"""facepars: train, evaluate and ship face-parsing models with TensorFlow."""

__version__ = "0.1.0"
