"""Drop the example resource's files when the service was generated without it."""

from pathlib import Path

EXAMPLE_FILES = [
    "tests/units/test_items.py",
    "tests/functional/test_items.py",
]


def main() -> None:
    """Remove what example_resource=no does not need (the project directory is the working directory)."""
    if {{ cookiecutter.example_resource | py_str(4) }} != "yes":
        for name in EXAMPLE_FILES:
            Path(name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
