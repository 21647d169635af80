"""The two kinds of failure, named by what they do to a study (as keras-tuner names its errors)."""


class UserError(Exception):
    """A mistake the user can fix (config, data, tracking store): stops everything before any training.

    The CLI prints it as one line, ``error: <message>``, and exits with status 2.
    """


class FailedTrial(Exception):
    """One trial went wrong (NaN loss, an exception in fit): recorded as a failed trial; the study goes on."""
