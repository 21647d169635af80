"""An `architectures:` entry read as a name: a built-in, or the user's own body with the name it goes by."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from rnncompare.core.architectures import ARCHITECTURES

NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,39}"


class ArchitectureName(str):
    """An architecture's name, as the rest of the code uses it (a str); `body` is the import path of the user's
    own function ("models/conv.py:conv_body"), None for a built-in."""

    body: str | None

    def __new__(cls, name: str, body: str | None = None):
        named = super().__new__(cls, name)
        named.body = body
        return named

    def __reduce__(self):  # pickled for spawned processes with its body
        return (ArchitectureName, (str(self), self.body))

    def entry(self) -> str | dict[str, str]:
        """How a config file writes it: the bare name, or {name, body}."""
        return str(self) if self.body is None else {"name": str(self), "body": self.body}


def architecture_entry(entry: Any) -> ArchitectureName:
    """One `architectures:` entry as a name: a built-in ("lstm"), a body ("file.py:function", named after the
    function) or {name, body}; raises ValueError saying what is allowed."""
    if isinstance(entry, ArchitectureName):
        return entry
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"name", "body"})
        if unknown or not isinstance(entry.get("name"), str) or not isinstance(entry.get("body"), str):
            raise ValueError(
                f"an architecture of your own is {{name: NAME, body: 'file.py:function'}}, got {show_value(entry)}"
            )
        name, body = entry["name"], entry["body"]
    elif isinstance(entry, str) and ":" in entry:
        name, body = entry.rpartition(":")[2], entry
    elif isinstance(entry, str):
        if entry not in ARCHITECTURES:
            close = difflib.get_close_matches(entry, ARCHITECTURES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(
                f"must be a built-in architecture or your own ('file.py:function', or {{name: NAME, body: "
                f"'file.py:function'}}), got {entry!r}{hint}; built-in: {', '.join(ARCHITECTURES)}"
            )
        return ArchitectureName(entry)
    else:
        raise ValueError(f"must be an architecture's name or {{name, body}}, got {show_value(entry)}")
    location, _, function = body.rpartition(":")
    if not location or not function.isidentifier():
        raise ValueError(f"must name a body as 'file.py:function' or 'module:function', got {body!r}")
    # a {name, body} mapping is described after a colon ("architectures[0]: ..."), a string after a space
    subject = "the name" if isinstance(entry, dict) else "must not take a built-in's name:"
    if name in ARCHITECTURES:
        raise ValueError(
            f"{subject} {name!r} is a built-in architecture's; name {body!r} otherwise with {{name: NAME, body: ...}}"
        )
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"{'the name' if isinstance(entry, dict) else 'must be named by'} {name!r}: an architecture's name is "
            "a letter then letters, digits or '_' (40 at most)"
        )
    return ArchitectureName(name, body)


def show_value(value: Any) -> str:
    """A config value as the one-line errors quote it: YAML's flow style for mappings and lists."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return "null" if value is None else repr(value)
