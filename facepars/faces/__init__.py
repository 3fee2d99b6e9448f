"""Finding and aligning faces in photos: the MTCNN cascade as TensorFlow ops, the
detector interface, five-point similarity alignment. Shared by data preparation
(``prepare --align=detect``) and inference; imports only ``core``.

``detection`` and ``alignment`` import no TensorFlow at module level: prepare's
worker processes load them."""
