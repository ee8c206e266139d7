"""Errors the user can fix. Their message names the file or setting, what is wrong, and what to do; the server
returns them as JSON-RPC errors with code `USER_ERROR` and the CLI prints them as one line."""


class UserError(Exception):
    """Bad input: a file, a setting or a flag."""


class CheckpointError(UserError):
    """A model directory that cannot be loaded as it is."""


class DataError(UserError):
    """Training or evaluation data that cannot be used as it is."""


class Cancelled(Exception):
    """The client cancelled the request."""
