"""``UserError``: the one exception tinyres raises on purpose about what the user asked for.

A missing dataset, a bad flag, a checkpoint of another model: the ``tinyres`` command prints
these as one line and exits with status 2.  Anything else that escapes is a bug in tinyres
(or in the environment) and is shown with its traceback.  ``UserError`` is a ``ValueError``,
so code that catches ``ValueError`` keeps working.
"""


class UserError(ValueError):
    """A problem with the user's input, told in one line that says what to do instead."""


class CheckpointError(UserError):
    """A file that is not a loadable checkpoint: truncated, altered, foreign, too new, or (a
    ``.pth``) naming code to run.  Raised by ``tinyres.load``; also
    ``tinyres.serialization.CheckpointError``."""
