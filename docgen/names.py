"""What a service's name and version may be: the one definition every part of docgen checks against.

Both become URL segments (``/api/{name}/{version}``), file and page names, and parts of component names and
operationIds. A name is what the deployer accepts for a Docker service name that is also a URL segment (the
environment-state service's ``NAME_RE``): lower-case letters, digits and ``-``, starting with a letter or a
digit, at most 63 characters (a DNS label). A version is what a service's ``auto.docs.version`` label may hold
(the deployer's ``DOCS_VERSION``): letters, digits, ``.``, ``_`` and ``-``, at most 63 characters.

Values from outside are checked with :func:`valid_name` and :func:`valid_version`: the whole value must match
(``re.match(r"^web$", "web\\n")`` succeeds: ``$`` also matches before a final newline) and no control
character may hide in it (:func:`autocore.names.is_valid`). Every other check in docgen uses ``fullmatch``
too; the patterns keep their anchors only because messages show them.
"""

from __future__ import annotations

import re

from autocore.names import is_valid

__all__ = ["RESERVED_NAMES", "SERVICE_NAME", "SERVICE_NAME_PATTERN", "SERVICE_VERSION", "valid_name", "valid_version"]

SERVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"  # unanchored, to be embedded in larger patterns
SERVICE_NAME = re.compile(rf"^{SERVICE_NAME_PATTERN}$")
SERVICE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Names a service cannot have: the portal's own pages use them (``api/index`` is the API landing page).
RESERVED_NAMES = frozenset({"index"})


def valid_name(value: object) -> bool:
    """Whether ``value`` is a service name: all of it matches, no control character (reserved names aside)."""
    return is_valid(SERVICE_NAME, value)


def valid_version(value: object) -> bool:
    """Whether ``value`` is a service's API version: all of it matches, no control character."""
    return is_valid(SERVICE_VERSION, value)
