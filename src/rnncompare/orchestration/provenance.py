"""Where a study ran: the versions of the packages that decide its numbers, and the git commit of the code."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

VERSIONED_PACKAGES = ("tensorflow", "keras", "keras-tuner", "mlflow")


def versions() -> dict[str, str]:
    """Python's and each of `VERSIONED_PACKAGES`' version ("not installed" when absent)."""
    found = {"python": platform.python_version()}
    for distribution in VERSIONED_PACKAGES:
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[distribution] = "not installed"
    return found


def git_commit() -> str | None:
    """The commit checked out in the working folder, or None outside a git checkout."""
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and len(commit) == 40 else None


def source_name() -> str:
    """The command that started this process, as the MLflow runs table shows it ("rnncompare run x.yaml")."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program in ("__main__.py", "rnncompare"):
        program = "rnncompare"
    return " ".join([program, *sys.argv[1:]])[:500]
