"""Where the toolkit's CI/CD components are: on disk for rendering, and as GitLab includes them.

Kept apart from ``render`` so that the command line can show these defaults without loading the
renderer (Jinja2, YAML) for every subcommand.
"""

from __future__ import annotations

import re

from autocore.names import is_valid
from autocore.resources import TEMPLATES_PACKAGE, package_folder
from pipelines.errors import PipelinesConfigError

# The toolkit's templates/ (its CI/CD components and the service-pipeline template), as installed: a package of
# data, found through importlib.resources (in a wheel, an sdist's build and an editable install alike).
TEMPLATES_DIR = package_folder(TEMPLATES_PACKAGE)
DEFAULT_COMPONENT_PATH = "$CI_SERVER_FQDN/auto/toolkit"

# A component path is HOST/GROUP[/SUBGROUP...]/PROJECT: GitLab's include: component: takes it before /NAME@VERSION.
# It is written unquoted into the rendered file, so only these characters may reach it.
_HOST = re.compile(
    r"\$CI_SERVER_FQDN"
    r"|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?"
)
# GitLab's group and project paths: letters, digits, _ . -, not starting with - or . (nor ending in .git/.atom).
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_component_path(path: str) -> str:
    """``path`` when it is a GitLab component path (``$CI_SERVER_FQDN/group/project``, or a host name first);
    raises ``PipelinesConfigError`` (one line) when it is not. Whole match: no whitespace, no control character."""
    host, _, rest = path.partition("/")
    segments = rest.split("/") if rest else []
    ok = (
        len(path) <= 1024
        and is_valid(_HOST, host)
        and len(segments) >= 2
        and all(is_valid(_PATH_SEGMENT, s) and not s.endswith((".git", ".atom")) for s in segments)
    )
    if not ok:
        raise PipelinesConfigError(
            f"component path {path!r}: not a GitLab component path; write HOST/GROUP/PROJECT, "
            f"the host a domain name or $CI_SERVER_FQDN (default: {DEFAULT_COMPONENT_PATH})"
        )
    return path
