"""The one exception type for problems with the user's input.

A `UserError` message is a single sentence that names the problem and the fix
("no such file: emb.npy; pass the path of an N x d .npy or .pt file"). The CLI prints it on one
line, without a traceback, and exits with status 2. Library callers can catch it like any error.
"""


class UserError(Exception):
    """Bad input from the user (path, file contents, flag values); the message says the fix."""
