"""Reject answers that would make a broken service, before anything is kept on disk.

Prints ONE line on stderr saying what to do and exits 1; cookiecutter then deletes the half-made project.
"""

import keyword
import re
import sys

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
VERSION = re.compile(r"^v[0-9]+$")


def problem(slug: str, version: str, port: str) -> str | None:
    """The first thing wrong with the answers, phrased as what to do; None when they are fine."""
    if not SLUG.match(slug):
        return (
            f"service_slug {slug!r} is not valid: use 2-41 lower-case letters, digits and '-', "
            "starting with a letter (e.g. orders)"
        )
    package = slug.replace("-", "_")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        return f"service_slug {slug!r} would shadow Python's own {package!r}: choose another slug (e.g. {slug}-service)"
    if not VERSION.match(version):
        return f"api_version {version!r} is not valid: use 'v' and a number (e.g. v1)"
    if not port.isdigit() or not 1024 <= int(port) <= 65535:
        return f"port {port!r} is not valid: use a number from 1024 to 65535 (e.g. 8080)"
    return None


def main() -> int:
    """Check the answers cookiecutter rendered into this script."""
    message = problem(
        {{ cookiecutter.service_slug | tojson }},
        {{ cookiecutter.api_version | tojson }},
        {{ cookiecutter.port | string | tojson }},
    )
    if message:
        print(f"Error: {message}; nothing was generated.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
