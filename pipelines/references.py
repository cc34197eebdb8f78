"""``!reference [job, key, ...]`` resolved as GitLab resolves it: after includes and ``extends``, so a reference
names the merged job, nested references followed up to GitLab's limit of 10, and a list a reference brings
into ``script:`` or ``rules:`` flattened into the list around it (GitLab's ``Commands`` and ``Rules`` entries
flatten nested lists; the merged YAML GitLab shows keeps them nested).

Expansion has budgets of its own, because a reference is a copy, not a pointer: a 2 KB file of lists of
references to lists of references stands for billions of nodes once expanded (the loader's alias budget
cannot see it: ``!reference`` is resolved after loading). Past a budget, :func:`resolve_references`
raises a one-line ``PipelinesConfigError`` naming it, before the copy is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autocore.loading import DEFAULT_BUDGET
from pipelines.errors import PipelinesConfigError
from pipelines.gitlab_yaml import Reference

MAX_REFERENCE_DEPTH = 10  # GitLab's own limit on nested !reference tags
# Nodes (mappings, lists, scalars) that reference expansion may add to a file. Linting costs some 20 us a node,
# so the worst file under this budget lints in seconds; real files add a few thousand (100 jobs that each
# reference a 20-rule list add 6,000).
MAX_REFERENCE_NODES = 200_000
# The expanded file may be no deeper than a loaded one may be: deeper, and lint's recursive walks (and the
# schema validator's) would run out of stack instead of answering.
MAX_RESOLVED_DEPTH = DEFAULT_BUDGET.max_depth
# Keys whose nested lists GitLab flattens: the script entries (Entry::Commands, Entry::Script) and rules.
FLATTENED_KEYS = frozenset({"script", "before_script", "after_script", "rules"})
MAX_FLATTEN_LEVELS = 10  # GitLab's nesting limit for script and rules lists


@dataclass(frozen=True)
class Unresolved:
    """A ``!reference`` that names nothing: where it is (path parts), and why."""

    where: tuple[Any, ...]
    reference: Reference
    reason: str


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
            if references >= MAX_REFERENCE_DEPTH:
                unresolved.append(Unresolved(where, node, f"nested deeper than {MAX_REFERENCE_DEPTH} levels"))
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


def flatten(items: list[Any], levels: int = MAX_FLATTEN_LEVELS) -> tuple[list[Any], bool]:
    """``items`` with nested lists spliced in, as Ruby's ``flatten``; the flag says whether lists nested deeper
    than ``levels`` were left (GitLab refuses those)."""
    flat: list[Any] = []
    too_deep = False
    for item in items:
        if isinstance(item, list):
            if levels <= 0:
                too_deep = True
                flat.append(item)
                continue
            inner, deeper = flatten(item, levels - 1)
            flat.extend(inner)
            too_deep = too_deep or deeper
        else:
            flat.append(item)
    return flat, too_deep


def flatten_entries(entry: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A job (or ``default:``/``workflow:``) with its script and rules lists flattened; also the keys whose lists
    nest deeper than GitLab's limit."""
    out = dict(entry)
    too_deep = []
    for key in FLATTENED_KEYS & out.keys():
        if isinstance(out[key], list) and any(isinstance(item, list) for item in out[key]):
            out[key], deeper = flatten(out[key])
            if deeper:
                too_deep.append(key)
    return out, too_deep
