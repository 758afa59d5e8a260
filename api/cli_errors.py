"""The command line's one misuse error, shared by every command module."""


class UsageError(Exception):
    """Misuse: reported as one line, exit 2 (``api/cli.py``)."""
