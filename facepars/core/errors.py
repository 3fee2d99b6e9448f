"""The base of every error a user can act on (bad input, a setup that cannot run).

Command lines print such an error as one line and exit 1 (facepars.core.cli); any
other exception is a bug and keeps its traceback. No TensorFlow here: the
light modules (conversion workers) raise these too.
"""


class FaceparsError(Exception):
    """A problem with the user's data, files or settings; the message says what to change."""


class ConfigError(FaceparsError, ValueError):
    """A setting that asks for something that does not exist or cannot work together."""


class PrepareError(FaceparsError):
    """A data preparation that cannot go on; the message says why and what to do."""
