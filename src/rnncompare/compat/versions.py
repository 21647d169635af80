"""The version range each compat module was written against, checked when the module is imported.

A private API can change in any release; a patch that meets another version refuses to run instead of
misbehaving quietly. The check reads the installed distribution's metadata, so it imports nothing heavy.
"""

from __future__ import annotations

from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from rnncompare.core.errors import UserError


class IncompatibleVersion(UserError):
    """An installed library is outside the range a compat module was written for (one line, exit 2)."""


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None where it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_range(distribution: str, version: str | None, supported: str, module: str) -> None:
    """Raise `IncompatibleVersion` unless `version` of `distribution` is in `supported` (a PEP 440 range)."""
    if version is None:
        raise IncompatibleVersion(
            f"{distribution} is not installed; rnncompare needs {distribution}{supported} "
            f"(pip install '{distribution}{supported}')"
        )
    if Version(version) not in SpecifierSet(supported):
        raise IncompatibleVersion(
            f"{distribution} {version} is installed, but rnncompare.compat.{module} patches its private API as it "
            f"is in {distribution}{supported}: pip install '{distribution}{supported}'"
        )


def require(distribution: str, supported: str, module: str) -> str:
    """Check the installed `distribution` against `supported` for compat module `module`; return its version."""
    version = installed_version(distribution)
    check_range(distribution, version, supported, module)
    return version
