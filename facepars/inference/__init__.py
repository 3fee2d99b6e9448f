"""After training: ``Predictor`` (a run, a SavedModel, TFLite or ONNX behind one
interface), the photo-to-network mapping exported models carry, whole photos in one
graph, video tracking, what predict writes, and predict on Beam. Imports ``core``,
``models``, ``faces`` and ``data``; never ``training``."""
