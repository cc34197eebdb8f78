"""What a service's name and version may be: the one definition every part of docgen checks against.

Both become URL segments (``/api/{name}/{version}``), file and page names, and parts of component names and
operationIds. A name is what the deployer accepts for a Docker service name that is also a URL segment (the
environment-state service's ``NAME_RE``): lower-case letters, digits and ``-``, starting with a letter or a
digit, at most 63 characters (a DNS label). A version is what a service's ``auto.docs.version`` label may hold
(the deployer's ``DOCS_VERSION``): letters, digits, ``.``, ``_`` and ``-``, at most 63 characters.
"""

from __future__ import annotations

import re

__all__ = ["SERVICE_NAME", "SERVICE_NAME_PATTERN", "SERVICE_VERSION"]

SERVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"  # unanchored, to be embedded in larger patterns
SERVICE_NAME = re.compile(rf"^{SERVICE_NAME_PATTERN}$")
SERVICE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
