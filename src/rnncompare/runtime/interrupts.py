"""Ctrl-C and SIGTERM, remembered: a library that turns the KeyboardInterrupt raised inside its own call into an
error of its own (or the end of its data) would otherwise let a study run on. The CLI's handlers record the
request before they raise; the fit checks it at the end of every epoch and raises it again."""

from __future__ import annotations

_requested: list[type[BaseException]] = []


def request_stop(raised: type[BaseException]) -> None:
    """Record that the user asked this process to stop, and the exception (a KeyboardInterrupt) that says so."""
    _requested[:] = [raised]


def clear_stop() -> None:
    """Forget an earlier request (a new command in the same process)."""
    _requested.clear()


def raise_if_stop_requested() -> None:
    """Raise the recorded request again, if there is one."""
    if _requested:
        raise _requested[0]()
