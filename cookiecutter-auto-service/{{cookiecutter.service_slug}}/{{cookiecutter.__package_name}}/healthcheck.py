"""Exit 0 when the service on this host answers ``/health``, else 1 (Docker's HEALTHCHECK runs this)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = {{ cookiecutter.port }}


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether ``http://127.0.0.1:<port>/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    """Check the port in ``$PORT`` (default {{ cookiecutter.port }})."""
    return 0 if healthy(int(os.environ.get("PORT", DEFAULT_PORT))) else 1


if __name__ == "__main__":
    sys.exit(main())
