"""The project's error types: every mistake a user can cause raises one of these.

Each message names the place (file and line, config key, model directory) and
the fix.  The command line prints ``str(error)`` on one line and exits with
code 2, without a traceback unless ``--debug`` is given.
"""


class NerWindowError(Exception):
    """Base class for user-facing errors (bad data, config, model directory)."""

    exit_code = 2


class DataError(NerWindowError):
    """A data file cannot be read: missing, undecodable, wrong columns, unknown tag."""


class ConfigError(NerWindowError):
    """A config key is unknown, has the wrong type, or is out of range."""


class ModelError(NerWindowError):
    """A saved model directory is missing, truncated, or inconsistent."""


class TrainingError(NerWindowError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class WriteError(NerWindowError):
    """A file cannot be written: no permission, the disk is full, a read-only file system, a
    path through a regular file ... (files.py turns the OSError into this, naming the path)."""


class MissingExtraError(NerWindowError):
    """A feature needs an optional extra (e.g. ``onnx``) that is not installed."""


class RequestError(NerWindowError):
    """An HTTP request the server cannot answer: not JSON, wrong fields, over a size limit.

    ``status`` is the HTTP status the server answers with (400 by default, 413 for a
    request over a limit)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
