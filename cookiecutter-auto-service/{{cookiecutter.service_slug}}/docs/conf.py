"""Sphinx configuration: Markdown pages through myst-parser; `make docs` builds with -W (warnings fail)."""

project = {{ cookiecutter.service_name | tojson }}
author = {{ cookiecutter.owner | tojson }}
release = "{{ cookiecutter.api_version }}"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"{project} {release}"
