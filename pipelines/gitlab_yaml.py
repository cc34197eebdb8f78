"""Loading GitLab CI YAML: ``!reference`` tags, duplicate keys, component ``spec:`` headers.

A CI/CD component file is two YAML documents: the ``spec:`` header, ``---``, then the body.
:func:`load_document` returns a :class:`Loaded` (the spec or None, the body, the duplicate keys);
:func:`load_pipeline` the first two alone.

A key written twice in one mapping is not an error to GitLab: Ruby's YAML keeps the last value, and so
does this loader. It is recorded (:class:`DuplicateKey`, with both line numbers) for lint to warn about,
because in real files it sometimes hides a slip. ``!reference`` tags stay :class:`Reference` objects here:
GitLab resolves them only after includes and ``extends`` (see ``pipelines.references``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autocore.errors import ToolkitError
from autocore.loading import StrictYAMLLoader, load_yaml_documents, yaml_problem
from autocore.text import json_path
from pipelines.errors import PipelinesConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Reference:
    """An unresolved ``!reference [job, key, ...]``; ``line`` is 1-based."""

    parts: tuple[str, ...]
    line: int

    def __str__(self) -> str:
        return f"!reference [{', '.join(self.parts)}]"


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping: where the mapping is (path parts), the key, and both lines (1-based).
    GitLab keeps the value written last."""

    where: tuple[Any, ...]
    key: str
    first_line: int
    second_line: int


@dataclass
class Loaded:
    """A loaded GitLab CI file: its ``spec:`` header (None when it has none), its body, its duplicate keys."""

    spec: dict[str, Any] | None
    body: dict[str, Any]
    duplicates: list[DuplicateKey] = field(default_factory=list)


class GitLabLoader(StrictYAMLLoader):
    """The strict loader's types (dates kept as strings), plus ``!reference``; a duplicate key is recorded, and the
    last value kept, as GitLab's YAML does."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        return yaml.SafeLoader.construct_mapping(self, node, deep=deep)  # duplicates: the last one wins


def _duplicate_keys(root: Node) -> list[DuplicateKey]:
    """Every key written twice in one mapping of the tree under ``root``. Each node is visited once (an alias
    shares its anchor's node), so the walk costs what composing the document did."""
    found: list[DuplicateKey] = []
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in lines:
                    found.append(DuplicateKey(where, key_node.value, lines[key_node.value], line))
                lines[key_node.value] = line
                stack.append((value_node, (*where, key_node.value)))
        elif isinstance(node, SequenceNode):
            stack.extend((child, (*where, index)) for index, child in enumerate(node.value))
    found.sort(key=lambda d: d.second_line)
    return found


def _construct_reference(loader: GitLabLoader, node: Any) -> Reference:
    if not isinstance(node, SequenceNode) or not node.value or not all(isinstance(n, ScalarNode) for n in node.value):
        raise ConstructorError(
            None, None, "!reference needs a non-empty list of names, like !reference [.setup, script]", node.start_mark
        )
    return Reference(tuple(str(n.value) for n in node.value), node.start_mark.line + 1)


GitLabLoader.add_constructor("!reference", _construct_reference)


def parse_pipeline(text: str, source: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Parse GitLab CI YAML text; returns ``(spec header or None, body)``. Raises ``PipelinesConfigError``."""
    loaded = parse_document(text, source)
    return loaded.spec, loaded.body


def parse_document(text: str, source: str) -> Loaded:
    """Parse GitLab CI YAML text into a :class:`Loaded`. Raises ``PipelinesConfigError``."""
    duplicates: list[DuplicateKey] = []
    try:
        documents = load_yaml_documents(
            text, source, loader=GitLabLoader, inspect=lambda node: duplicates.extend(_duplicate_keys(node))
        )
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
        return Loaded(spec, body, duplicates)
    (body,) = documents
    if set(body) == {"spec"} and isinstance(body["spec"], dict):
        return Loaded(body["spec"], {}, duplicates)  # a header with no body yet
    return Loaded(None, body, duplicates)


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
    loaded = load_document(path)
    return loaded.spec, loaded.body


def read_text(path: str | Path) -> str:
    """A CI file's text (UTF-8, a leading BOM dropped); raises ``PipelinesConfigError`` in one line."""
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
    return text.removeprefix("\ufeff")


def load_document(path: str | Path) -> Loaded:
    """Read and parse a GitLab CI file or CI/CD component. Raises ``PipelinesConfigError`` (one line)."""
    return parse_document(read_text(path), str(path))
