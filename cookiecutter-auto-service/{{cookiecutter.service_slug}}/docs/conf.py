"""Sphinx configuration: Markdown pages through myst-parser; `make docs` builds with -W (warnings fail)."""

project = {{ cookiecutter.service_name | py_str }}
author = {{ cookiecutter.owner | py_str }}
release = {{ cookiecutter.api_version | py_str }}

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"{project} {release}"
