"""Refuse answers that would make a broken service, before anything is kept on disk (the second line).

The answers are checked in-process right after the questions (``auto_service_answers.py``, when
``cookiecutter.json`` derives ``__package_name``): a bad one stops cookiecutter or cruft with one line before
this hook runs. What skips the questions (``cookiecutter --replay`` with an edited replay file) reaches
this hook, into which the same checks' verdict is rendered: it prints ONE line on stderr and exits 1, and
cookiecutter deletes the half-made project. This file is a Jinja template: no double brace but the verdict's.
"""

import sys

PROBLEM = {{ cookiecutter | answer_problem | py_str(0) }}


def main() -> int:
    """Report the verdict rendered into this script."""
    if PROBLEM:
        print(f"Error: {PROBLEM}; nothing was generated.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
