"""facepars: train, evaluate and ship face-parsing models with TensorFlow."""

__version__ = "0.1.0"


def __getattr__(name):
    # ``facepars.Predictor`` without importing TensorFlow for every ``import facepars``
    # (prepare's worker processes import this package and must stay light).
    if name == "Predictor":
        from facepars.inference import Predictor
        return Predictor
    raise AttributeError(f"module 'facepars' has no attribute {name!r}")
