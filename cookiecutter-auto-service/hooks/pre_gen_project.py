"""Reject answers that would make a broken service, before anything is kept on disk.

Prints ONE line on stderr naming the answer and what is allowed, and exits 1; cookiecutter then deletes the
half-made project. Every check is a full match of the whole answer (``re.fullmatch``), and no answer may hold
a character that is not printable (line breaks, tabs, other control or invisible formatting characters).
The answers are rendered into this script as Python string literals (the template's ``py_str`` filter); this
file is itself a Jinja template, so it must not hold a double brace outside those answers.
"""

import keyword
import re
import sys

# ASCII only: [a-z0-9] never matches other scripts' letters or digits, as str.isdigit() and \d would.
SLUG = re.compile(r"[a-z][a-z0-9-]{1,40}")
VERSION = re.compile(r"v[0-9]+")
PORT = re.compile(r"[1-9][0-9]{0,4}")
HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOCS_URL = re.compile("https://" + HOST + r"(?:\." + HOST + r")*(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9._~%+-]+)*/?")
# Plain YAML 1.1 (PyYAML, GitLab) reads these as booleans or null, not as the slug.
YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "null"}
CHOICES = ("yes", "no")


def shown(value: str) -> str:
    """``value`` for the message: quoted, escaped, and cut short when it is long."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def problem(answers: dict[str, str]) -> str | None:
    """The first thing wrong with the answers, phrased as what to do; None when they are fine."""
    for key, value in answers.items():
        bad = next((char for char in value if not char.isprintable()), None)
        if bad is not None:
            return (
                f"{key} {shown(value)} is not valid: it holds {bad!r}; use printable characters only "
                "(no line breaks, tabs or other control or invisible characters)"
            )
    name, slug, version = answers["service_name"], answers["service_slug"], answers["api_version"]
    port, docs_url, example = answers["port"], answers["docs_url"], answers["example_resource"]
    if not name.strip():
        return f"service_name {shown(name)} is not valid: give the service a title (e.g. Orders)"
    if not SLUG.fullmatch(slug):
        return (
            f"service_slug {shown(slug)} is not valid: use 2-41 lower-case letters, digits and '-', "
            "starting with a letter (e.g. orders)"
        )
    package = slug.replace("-", "_")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        return f"service_slug {slug!r} would shadow Python's own {package!r}: choose another slug (e.g. {slug}-service)"
    if slug in YAML_WORDS:
        return f"service_slug {slug!r} reads as a YAML boolean or null: choose another slug (e.g. {slug}-service)"
    if not VERSION.fullmatch(version):
        return f"api_version {shown(version)} is not valid: use 'v' and a number (e.g. v1)"
    if not PORT.fullmatch(port) or not 1024 <= int(port) <= 65535:
        return f"port {shown(port)} is not valid: use a number from 1024 to 65535 in ASCII digits (e.g. 8080)"
    if example not in CHOICES:
        return f"example_resource {shown(example)} is not valid: use yes or no"
    if not DOCS_URL.fullmatch(docs_url):
        return (
            f"docs_url {shown(docs_url)} is not valid: use an https:// URL of a host and a path of letters, "
            f"digits and - . _ ~ % + / only, no query or fragment (e.g. https://auto.pages.example.com/{slug})"
        )
    return None


def main() -> int:
    """Check the answers cookiecutter rendered into this script."""
    message = problem(
        {
            "service_name": {{ cookiecutter.service_name | py_str(12) }},
            "service_slug": {{ cookiecutter.service_slug | py_str(12) }},
            "api_version": {{ cookiecutter.api_version | py_str(12) }},
            "description": {{ cookiecutter.description | py_str(12) }},
            "owner": {{ cookiecutter.owner | py_str(12) }},
            "port": {{ cookiecutter.port | py_str(12) }},
            "example_resource": {{ cookiecutter.example_resource | py_str(12) }},
            "docs_url": {{ cookiecutter.docs_url | py_str(12) }},
        }
    )
    if message:
        print(f"Error: {message}; nothing was generated.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
