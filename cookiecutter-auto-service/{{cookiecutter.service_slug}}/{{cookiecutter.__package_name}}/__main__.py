"""Serve the app with uvicorn on ``$HOST``:``$PORT`` (default 0.0.0.0:{{ cookiecutter.port }})."""

import os

import uvicorn


def main() -> None:
    """Serve until stopped."""
    uvicorn.run(
        {{ (cookiecutter.__package_name ~ '.app:app') | py_str(8) }},
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", {{ cookiecutter.port | py_str(8) }})),
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
