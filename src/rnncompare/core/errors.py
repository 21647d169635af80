"""Failures named by what they do to a study (as keras-tuner names its errors)."""


class UserError(Exception):
    """A mistake the user can fix (config, data, tracking store): stops everything before any training.

    The CLI prints it as one line, ``error: <message>``, and exits with status 2.
    """


class FailedTrial(Exception):
    """One trial went wrong (NaN loss, an exception in fit): recorded as a failed trial; the study goes on."""


class StudyStopped(Exception):
    """Too many trials failed in a row: the study stops, its runs are closed as FAILED, and running the same
    command again (after fixing the cause) resumes it. The CLI prints one line and exits with status 1."""
