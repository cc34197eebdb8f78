"""Where the toolkit's CI/CD components are: on disk for rendering, and as GitLab includes them.

Kept apart from ``render`` so that the command line can show these defaults without loading the
renderer (Jinja2, YAML) for every subcommand.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_COMPONENT_PATH = "$CI_SERVER_FQDN/auto/toolkit"
