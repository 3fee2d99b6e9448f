"""On PYTHONPATH, this stands in for TensorFlow (tests/core/test_cli.py): a command
that imports TensorFlow before it has checked its flags fails here, loudly."""

raise ImportError("TensorFlow was imported before the command's flags were checked")
