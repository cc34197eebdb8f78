"""The toolkit's one version, as installed: what ``--version`` of every command says.

The version is set once, by the git tag the release is built from (setuptools-scm, ``pyproject.toml``): ``1.2.0``
gives 1.2.0, a commit after the newest tag (or in a repository without one) a development version such as
``0.1.dev42+g1a2b3c4``. It is written into the installed distribution's metadata, and read from there at run time;
no module holds a copy of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version
from typing import Any

DISTRIBUTION = "auto-toolkit"
UNKNOWN_VERSION = "0+unknown"  # not installed: a source tree put on PYTHONPATH


def toolkit_version() -> str:
    """The installed toolkit's version, from its distribution metadata (``UNKNOWN_VERSION`` when not installed)."""
    try:
        return _distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


class _VersionAction(argparse.Action):
    """``--version``: print ``PROG VERSION`` on stdout and exit 0. The version is looked up only then, so that no
    other command pays for reading the metadata."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show the toolkit's version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"{parser.prog} {toolkit_version()}\n")
        parser.exit()


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the ``--version`` every command has: ``PROG VERSION``, the version :func:`toolkit_version`."""
    parser.add_argument("--version", action=_VersionAction)
