"""openapi-spec-validator against openapi-spec-validator-rs on the real-world corpus: time, verdict, errors.

For every spec of tests/docgen/realworld.txt (``make corpus``) plus one large spec generated from them
(the OpenAPI 3.0 specs of the corpus merged, with prefixed paths and component names, until it is ~5 MB),
this runs, each in its own worker process:

  osv        openapi-spec-validator as the project installs it (jsonschema-rs backend for the JSON-Schema
             pass, ``regress`` for ECMA-262 ``pattern``/``regex``): ``iter_errors()``, all errors
  osv-plain  openapi-spec-validator's "default installation": jsonschema backend, no ``regress``
             (OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND=jsonschema, ``regress`` hidden)
  rs         openapi-spec-validator-rs ``iter_errors()``
  osv-walk   the semantic walk alone (``root_validator``), what docgen.validate runs (project install)
  rs-walk    the same from openapi-spec-validator-rs (its errors after the JSON-Schema pass's)

and compares them: verdict (valid / invalid / aborted) and the set of (path, message) pairs.
Everything runs offline (no ``$ref`` is fetched). Nothing is written.

Run (openapi-spec-validator-rs is not a project dependency; use a throwaway venv that has it):
    /tmp/rsvenv/bin/python benchmarks/validator_compare.py [--repeat 3] [--json out.json] [--no-big]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONFIGS = {
    # name: (backend for spec_fast, walk only, environment)
    "osv": ("python", False, {}),
    "osv-plain": (
        "python",
        False,
        {"OPENAPI_SPEC_VALIDATOR_SCHEMA_VALIDATOR_BACKEND": "jsonschema", "_HIDE": "regress"},
    ),
    "rs": ("rs", False, {}),
    "osv-walk": ("python", True, {}),
    "rs-walk": ("rs", True, {}),
}
COMPARISONS = [("osv", "rs"), ("osv-plain", "rs"), ("osv-walk", "rs-walk")]
BIG_TARGET = 5 * 1024 * 1024
_COMPONENT_KINDS = ("schemas", "parameters", "responses", "requestBodies", "headers", "examples", "links", "callbacks")


# --------------------------------------------------------------------------- the large spec


def _rename_refs(node: Any, prefix: str, route_prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/paths/~1"):
                value = "#/paths/~1" + route_prefix[1:] + "~1" + value[len("#/paths/~1") :]
            elif key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                parts = value.split("/", 3)  # '#', 'components', kind, name...
                if len(parts) == 4 and parts[2] in _COMPONENT_KINDS:
                    value = f"#/components/{parts[2]}/{prefix}{parts[3]}"
            elif key == "operationId" and isinstance(value, str):
                value = prefix + value
            out[key] = _rename_refs(value, prefix, route_prefix)
        return out
    if isinstance(node, list):
        return [_rename_refs(value, prefix, route_prefix) for value in node]
    return node


def build_big_spec(paths: list[Path], target: int = BIG_TARGET) -> dict[str, Any]:
    """The corpus's OpenAPI 3.0 specs merged into one (prefixed paths, components, operationIds), repeated
    until the JSON text reaches ``target`` bytes."""
    from docgen.validate import load_spec

    sources = []
    for path in paths:
        document, _ = load_spec(path)
        if str(document.get("openapi", "")).startswith("3.0") and isinstance(document.get("paths"), dict):
            sources.append(document)
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Merged real-world specs", "version": "1"},
        "paths": {},
        "components": {kind: {} for kind in _COMPONENT_KINDS} | {"securitySchemes": {}},
    }
    size, copy_index = 0, 0
    while size < target:
        for index, document in enumerate(sources):
            prefix, route_prefix = f"c{copy_index}s{index}_", f"/c{copy_index}s{index}"
            renamed = _rename_refs(document, prefix, route_prefix)
            for route, item in renamed.get("paths", {}).items():
                merged["paths"][route_prefix + route] = item
            for kind, members in (renamed.get("components") or {}).items():
                if kind == "securitySchemes":
                    for name, scheme in members.items():
                        merged["components"]["securitySchemes"].setdefault(name, scheme)
                elif kind in _COMPONENT_KINDS and isinstance(members, dict):
                    for name, value in members.items():
                        merged["components"][kind][prefix + name] = value
        copy_index += 1
        size = len(json.dumps(merged))
    merged["components"] = {kind: members for kind, members in merged["components"].items() if members}
    return merged


# --------------------------------------------------------------------------- one worker: one configuration


def _worker(config: str, files: list[str], repeat: int) -> list[dict[str, Any]]:
    backend, walk_only, _ = CONFIGS[config]
    import validator_backends as spec_fast

    from docgen.validate import load_spec

    run = spec_fast.walk_errors if walk_only else spec_fast.library_errors_detailed
    rows = []
    for name in files:
        document, _ = load_spec(name)
        version = str(document.get("swagger") if "swagger" in document else document.get("openapi"))
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            errors = run(document, version, using=backend)
            times.append(time.perf_counter() - started)
        aborted = [e.message for e in errors if e.kind == "aborted"]
        rows.append(
            {
                "file": name,
                "seconds": min(times),
                "verdict": "aborted" if aborted else ("invalid" if errors else "valid"),
                # an aborted run's reason can quote the whole document: cut it
                "errors": [[[str(p) for p in e.path], e.message[:2000]] for e in errors],
            }
        )
    return rows


def _run_worker(config: str, files: list[str], repeat: int) -> list[dict[str, Any]]:
    env = dict(os.environ)
    extra = dict(CONFIGS[config][2])
    hide = extra.pop("_HIDE", None)
    env.update(extra)
    env["DOCGEN_SPEC_VALIDATOR"] = CONFIGS[config][0]
    with tempfile.TemporaryDirectory() as tmp:
        if hide:  # a sitecustomize that makes `import regress` fail, as if it were not installed
            Path(tmp, "sitecustomize.py").write_text(f"import sys\nsys.modules[{hide!r}] = None\n")
            env["PYTHONPATH"] = os.pathsep.join([tmp, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        out = Path(tmp, "out.json")
        args = [sys.executable, __file__, "--worker", config, "--repeat", str(repeat), "--out", str(out), *files]
        subprocess.run(args, env=env, check=True)
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- the comparison


def _pairs(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {("/".join(path), message) for path, message in row["errors"]}


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per spec; the fastest is kept")
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--no-big", action="store_true", help="skip the generated ~5 MB spec")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        Path(args.out).write_text(json.dumps(_worker(args.worker, args.files, args.repeat)))
        return 0

    try:
        import openapi_spec_validator_rs
    except ImportError:
        print("openapi-spec-validator-rs is not installed: pip install openapi-spec-validator-rs", file=sys.stderr)
        return 2
    import openapi_spec_validator

    from tests.docgen.realworld import spec_paths

    corpus = [str(p) for p in spec_paths()]
    files = list(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_big:
            big = Path(tmp, "merged-realworld.json")
            big.write_text(json.dumps(build_big_spec([Path(p) for p in corpus])))
            files.append(str(big))
            routes = len(json.loads(big.read_text())["paths"])
            print(f"generated {big.name}: {big.stat().st_size / 1e6:.1f} MB, {routes} paths")
        sizes = {name: Path(name).stat().st_size for name in files}
        configs = [c for c in args.configs.split(",") if c in CONFIGS]
        results = {}
        for config in configs:
            started = time.perf_counter()
            results[config] = _run_worker(config, files, args.repeat)
            print(f"ran {config:9} on {len(files)} specs in {time.perf_counter() - started:6.1f} s", file=sys.stderr)

    print(
        f"openapi-spec-validator {openapi_spec_validator.__version__}, openapi-spec-validator-rs "
        f"{openapi_spec_validator_rs.__version__}; times in ms (best of {args.repeat}); "
        "verdict v=valid i=invalid a=aborted; '=' same error set as the reference, 'D' different"
    )
    header = f"{'spec':44} {'KB':>6} " + " ".join(f"{c:>12}" for c in configs)
    print(header)
    disagreements = []
    for index, name in enumerate(files):
        size = sizes[name] // 1024
        cells = []
        for config in configs:
            row = results[config][index]
            mark = ""
            for left, right in COMPARISONS:
                if config == right and left in results:
                    same = results[left][index]["verdict"] == row["verdict"] and _pairs(results[left][index]) == _pairs(
                        row
                    )
                    mark += "=" if same else "D"
                    if not same:
                        disagreements.append((Path(name).name, left, right))
            cells.append(f"{_fmt(row['seconds'])}{row['verdict'][0]}{len(row['errors']):>2}{mark:<2}"[-12:])
        label = "MERGED ~5MB" if name not in corpus else Path(name).name
        print(f"{label[:44]:44} {size:>6} " + " ".join(f"{cell:>12}" for cell in cells))

    print()
    print(f"{'totals':28} " + " ".join(f"{c:>12}" for c in configs))
    for title, subset in (("corpus total (s)", corpus), ("corpus median (ms)", corpus), ("corpus worst (ms)", corpus)):
        vals = []
        for config in configs:
            secs = [r["seconds"] for r, f in zip(results[config], files, strict=True) if f in subset]
            if "total" in title:
                vals.append(f"{sum(secs):12.3f}")
            elif "median" in title:
                vals.append(f"{statistics.median(secs) * 1000:12.1f}")
            else:
                vals.append(f"{max(secs) * 1000:12.1f}")
        print(f"{title:28} " + " ".join(vals))
    if not args.no_big:
        print(f"{'merged ~5MB (s)':28} " + " ".join(f"{results[c][-1]['seconds']:12.3f}" for c in configs))
    for left, right in COMPARISONS:
        if left in results and right in results:
            agree = sum(
                1
                for a, b in zip(results[left], results[right], strict=True)
                if a["verdict"] == b["verdict"] and _pairs(a) == _pairs(b)
            )
            verdicts = sum(
                1 for a, b in zip(results[left], results[right], strict=True) if a["verdict"] == b["verdict"]
            )
            print(f"{left} vs {right}: same verdict {verdicts}/{len(files)}, same error set {agree}/{len(files)}")
    if disagreements:
        print("\ndisagreements (spec, reference, candidate): only in reference '-', only in candidate '+'")
        for spec, left, right in disagreements:
            index = [Path(f).name for f in files].index(spec)
            a, b = _pairs(results[left][index]), _pairs(results[right][index])
            print(f"  {spec}: {left} {results[left][index]['verdict']} vs {right} {results[right][index]['verdict']}")
            for path, message in sorted(a - b)[:6]:
                print(f"    - {path or '$'}: {message[:150]}")
            for path, message in sorted(b - a)[:6]:
                print(f"    + {path or '$'}: {message[:150]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": files, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
