"""On PYTHONPATH, this stands in for an Apache Beam that is not installed (the
facepars[beam] extra left out; tests/test_prepare.py): importing it fails as the
missing package would."""

raise ModuleNotFoundError("No module named 'apache_beam'", name="apache_beam")
