"""Loading GitLab CI YAML: ``!reference`` tags, duplicate keys refused, component ``spec:`` headers.

A CI/CD component file is two YAML documents: the ``spec:`` header, ``---``, then the body.
:func:`load_pipeline` returns ``(spec or None, body)``; :func:`resolve_references` replaces each
``!reference [job, key, ...]`` by the value it names, as GitLab does after merging includes.

Expansion has budgets of its own, because a reference is a copy, not a pointer: a 2 KB file of lists of
references to lists of references stands for billions of nodes once expanded (the loader's alias budget
cannot see it: ``!reference`` is resolved after loading). Past a budget, :func:`resolve_references`
raises a one-line ``PipelinesConfigError`` naming it, before the copy is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import ScalarNode, SequenceNode

from autocore.errors import ToolkitError
from autocore.loading import DEFAULT_BUDGET, StrictYAMLLoader, load_yaml_documents, yaml_problem
from autocore.text import json_path
from pipelines.errors import PipelinesConfigError

_MAX_REFERENCE_DEPTH = 10  # GitLab's own limit on nested !reference tags
# Nodes (mappings, lists, scalars) that reference expansion may add to a file. Linting costs some 20 us a node,
# so the worst file under this budget lints in seconds; real files add a few thousand (100 jobs that each
# reference a 20-rule list add 6,000).
MAX_REFERENCE_NODES = 200_000
# The expanded file may be no deeper than a loaded one may be: deeper, and lint's recursive walks (and the
# schema validator's) would run out of stack instead of answering.
MAX_RESOLVED_DEPTH = DEFAULT_BUDGET.max_depth


@dataclass(frozen=True)
class Reference:
    """An unresolved ``!reference [job, key, ...]``; ``line`` is 1-based."""

    parts: tuple[str, ...]
    line: int

    def __str__(self) -> str:
        return f"!reference [{', '.join(self.parts)}]"


@dataclass(frozen=True)
class Unresolved:
    """A ``!reference`` that names nothing in the file: where it is (path parts), and why."""

    where: tuple[Any, ...]
    reference: Reference
    reason: str


class GitLabLoader(StrictYAMLLoader):
    """The strict loader (no duplicate keys, dates kept as strings) that also understands ``!reference``."""


def _construct_reference(loader: GitLabLoader, node: Any) -> Reference:
    if not isinstance(node, SequenceNode) or not node.value or not all(isinstance(n, ScalarNode) for n in node.value):
        raise ConstructorError(
            None, None, "!reference needs a non-empty list of names, like !reference [.setup, script]", node.start_mark
        )
    return Reference(tuple(str(n.value) for n in node.value), node.start_mark.line + 1)


GitLabLoader.add_constructor("!reference", _construct_reference)


def parse_pipeline(text: str, source: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Parse GitLab CI YAML text; returns ``(spec header or None, body)``. Raises ``PipelinesConfigError``."""
    try:
        documents = load_yaml_documents(text, source, loader=GitLabLoader)
    except ToolkitError as exc:  # past a budget
        raise PipelinesConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise PipelinesConfigError(yaml_problem(exc, source)) from None
    documents = [d for d in documents if d is not None] if len(documents) > 1 else documents
    if not documents:
        raise PipelinesConfigError(f"{source}: not a GitLab CI file (it is empty)")
    if len(documents) > 2:
        expected = "expected a body, or a spec header and a body"
        raise PipelinesConfigError(f"{source}: {len(documents)} YAML documents; {expected}")
    for document in documents:
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a {type(document).__name__}"
            raise PipelinesConfigError(f"{source}: not a GitLab CI file (a document is {kind}, not a mapping)")
        _check_keys(document, source)
    if len(documents) == 2:
        header, body = documents
        if set(header) != {"spec"}:
            extra = ", ".join(sorted(map(str, set(header) - {"spec"}))) or "no spec"
            raise PipelinesConfigError(f"{source}: the first of two documents must hold only spec: (found {extra})")
        spec = header["spec"] if isinstance(header["spec"], dict) else {}
        return spec, body
    (body,) = documents
    if set(body) == {"spec"} and isinstance(body["spec"], dict):
        return body["spec"], {}  # a header with no body yet
    return None, body


def _check_keys(document: dict[str, Any], source: str) -> None:
    """Every mapping key is a name: a key YAML reads as something else (``? `` alone is a null key, ``1:`` a
    number, ``[a]:`` a list) is one line saying where, instead of a crash in the schema check."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    raise PipelinesConfigError(
                        f"{source}: {json_path(where)}: the key {key!r} is not a name: write it in quotes"
                    )
                stack.append((child, (*where, key)))
        elif isinstance(value, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(value))


def load_pipeline(path: str | Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Read a GitLab CI file or CI/CD component; returns ``(spec header or None, body)``.

    Raises ``PipelinesConfigError`` (one line, with the line number when the YAML is invalid).
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PipelinesConfigError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise PipelinesConfigError(f"{source}: is a directory, not a file") from None
    except OSError as exc:
        raise PipelinesConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelinesConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    return parse_pipeline(text.removeprefix("\ufeff"), source)


def _lookup(body: dict[str, Any], parts: tuple[str, ...]) -> tuple[bool, Any, str]:
    node: Any = body
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            what = "job" if depth == 0 else "key"
            named = part if depth == 0 else ".".join(parts[: depth + 1])
            return False, None, f"no {what} {named!r}"
        node = node[part]
    return True, node, ""


def resolve_references(
    body: dict[str, Any],
    source: str = "<pipeline>",
    *,
    max_nodes: int = MAX_REFERENCE_NODES,
    max_depth: int = MAX_RESOLVED_DEPTH,
) -> tuple[dict[str, Any], list[Unresolved]]:
    """A copy of ``body`` with every resolvable ``!reference`` replaced by its value (nested ones too).

    References that name a missing job or key stay :class:`Reference` objects and are returned as
    :class:`Unresolved`, with where they are. Raises ``PipelinesConfigError`` (one line, naming ``source`` and
    the budget) when expansion would add more than ``max_nodes`` nodes or nest deeper than ``max_depth``: the
    count is kept while copying, so a hostile file costs at most ``max_nodes`` steps, never its full expansion.
    """
    unresolved: list[Unresolved] = []
    added = 0

    def count() -> None:
        nonlocal added
        added += 1
        if added > max_nodes:
            raise PipelinesConfigError(
                f"{source}: its !reference tags expand to more than {max_nodes} nodes, "
                f"over the reference expansion budget of {max_nodes}: refused unlinted"
            )

    def resolve(node: Any, where: tuple[Any, ...], references: int, level: int) -> Any:
        # ``references``: !reference tags followed to get here (GitLab's limit); ``level``: nesting in the copy.
        if isinstance(node, Reference):
            if references >= _MAX_REFERENCE_DEPTH:
                unresolved.append(Unresolved(where, node, f"nested deeper than {_MAX_REFERENCE_DEPTH} levels"))
                return node
            found, value, reason = _lookup(body, node.parts)
            if not found:
                unresolved.append(Unresolved(where, node, reason))
                return node
            return resolve(value, where, references + 1, level)
        if references:
            count()  # a node that only exists because a reference copied it
        if isinstance(node, dict | list):
            if level >= max_depth:
                raise PipelinesConfigError(
                    f"{source}: nested deeper than {max_depth} levels once its !reference tags are expanded, "
                    f"over the nesting depth budget of {max_depth}: refused unlinted"
                )
            if isinstance(node, dict):
                return {key: resolve(value, (*where, key), references, level + 1) for key, value in node.items()}
            return [resolve(value, (*where, index), references, level + 1) for index, value in enumerate(node)]
        return node

    return resolve(body, (), 0, 0), unresolved
