"""``extends:`` resolved as GitLab resolves it (``Gitlab::Ci::Config::Extendable``), after includes are merged
and before ``!reference`` tags: each entry's bases are extended first, deep-merged in the order listed, then
the entry itself is deep-merged over them (mappings merge key by key; anything else, lists included, is
replaced). Hidden jobs extend and are extended like any other entry.

GitLab refuses the whole file at the first problem; here every problem is returned, one per entry, so that a
file with two slips shows both: an unknown base (``unknown keys in `extends```), a base that is not a mapping,
a cycle, and a chain nested deeper than GitLab's limit (an entry with more than 10 ancestors that extends
again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import PipelinesConfigError

MAX_NESTING_LEVELS = 10  # GitLab's Extendable::Entry::MAX_NESTING_LEVELS
# Keys that following extends may copy into a file: as many as !reference expansion may add, for the same
# reason (each copied key is then checked, some 20-40 us each). Real files copy a few thousand (the largest
# of the corpus, 3,400); a 140 KB file of 3,000 jobs extending a 3,000-key template would copy 9 million.
MAX_MERGED_KEYS = 200_000


@dataclass(frozen=True)
class ExtendsProblem:
    """Why an entry's ``extends:`` could not be followed: ``where`` is the path of the issue, ``rule`` its rule."""

    where: tuple[Any, ...]
    rule: str
    message: str
    target: str | None = None  # the unknown base, for unknown-extends


@dataclass
class Extended:
    """The body with every ``extends:`` followed, and what could not be."""

    body: dict[str, Any]
    problems: list[ExtendsProblem] = field(default_factory=list)
    # Entries some of whose bases are unknown or unusable: what those would have given them cannot be known.
    incomplete: set[str] = field(default_factory=set)


def deep_merge(base: Any, override: Any) -> Any:
    """ActiveSupport's ``Hash#deep_merge``, which GitLab uses for ``extends`` and includes: mappings merge key by
    key, recursively; any other value in ``override`` (a list, a scalar, null) replaces the one in ``base``."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else value
    return merged


def extends_targets(entry: dict[str, Any]) -> list[tuple[int | None, str]]:
    """``(index or None, name)`` for each base ``entry`` names; names that are not strings are the schema's."""
    extends = entry.get("extends")
    if isinstance(extends, str):
        return [(None, extends)]
    if isinstance(extends, list):
        return [(i, t) for i, t in enumerate(extends) if isinstance(t, str)]
    return []


def _is_interpolation(name: str) -> bool:
    return "$[[" in name


def _size(value: Any) -> int:
    """Keys in ``value``'s mappings, nested ones included (what a deep merge of it may copy)."""
    if not isinstance(value, dict):
        return 0
    return len(value) + sum(_size(v) for v in value.values())


def resolve_extends(body: dict[str, Any], source: str = "<pipeline>", *, max_keys: int = MAX_MERGED_KEYS) -> Extended:
    """``body`` with every entry's ``extends:`` followed (a new dict; ``body`` is left alone). Raises
    ``PipelinesConfigError`` (one line naming the budget) when that would copy more than ``max_keys`` keys."""
    copied = 0

    def charge(value: Any) -> None:
        nonlocal copied
        copied += _size(value)
        if copied > max_keys:
            raise PipelinesConfigError(
                f"{source}: its extends: copy more than {max_keys} keys, over the extends expansion budget of "
                f"{max_keys}: refused unlinted"
            )

    context = dict(body)
    result = Extended(context)
    done: set[str] = set()
    reported: set[tuple[str, str]] = set()

    def report(key: str, rule: str, where: tuple[Any, ...], message: str, target: str | None = None) -> None:
        if (key, rule + (target or "")) not in reported:
            reported.add((key, rule + (target or "")))
            result.problems.append(ExtendsProblem(where, rule, message, target))

    def extend(key: str, ancestors: tuple[str, ...]) -> Any:
        value = context[key]
        if key in done or not isinstance(value, dict) or "extends" not in value:
            return value
        if key in ancestors:
            chain = " -> ".join((*ancestors[ancestors.index(key) :], key))
            report(key, "extends-cycle", (key,), f"circular dependency detected in extends ({chain})")
            result.incomplete.add(key)
            return value
        merged: Any = {}
        complete = True
        for index, target in extends_targets(value):
            where = (key, "extends") if index is None else (key, "extends", index)
            if _is_interpolation(target):
                complete = False  # a component's input names the base: known only to the includer
            elif target not in context:
                report(key, "unknown-extends", where, f"extends {target!r}, which is not a job", target)
                complete = False
            elif not isinstance(context[target], dict):
                message = f"extends {target!r}, which is not a mapping (invalid base hash in extends)"
                report(key, "extends-invalid-base", where, message)
                complete = False
            else:
                base = extend(target, (*ancestors, key))
                charge(base)  # counted before it is copied: the cost stays within the budget
                merged = deep_merge(merged, base)
                complete = complete and target not in result.incomplete
        context[key] = deep_merge(merged, value)
        if not complete:
            result.incomplete.add(key)
        done.add(key)
        return context[key]

    for key in list(context):
        if isinstance(key, str):
            extend(key, ())
    _report_depth(body, result)
    return result


def _report_depth(body: dict[str, Any], result: Extended) -> None:
    """GitLab follows a chain from every entry afresh and refuses one where an entry with more than
    ``MAX_NESTING_LEVELS`` ancestors extends again: a chain of more than ``MAX_NESTING_LEVELS + 1`` extends.
    Reported once, at the head of each such chain."""
    heights: dict[str, int] = {}
    longest: dict[str, str] = {}

    def height(key: str, visiting: frozenset[str]) -> int:
        if key in heights:
            return heights[key]
        value = body.get(key)
        best, via = 0, ""
        if isinstance(value, dict) and key not in visiting:
            for _, target in extends_targets(value):
                if target in body and target not in visiting:
                    h = 1 + height(target, visiting | {key})
                    if h > best:
                        best, via = h, target
        heights[key] = best
        longest[key] = via
        return best

    limit = MAX_NESTING_LEVELS + 1
    too_deep = {key for key in body if isinstance(key, str) and height(key, frozenset()) > limit}
    extended = {longest[key] for key in too_deep}
    for key in sorted(too_deep - extended, key=list(body).index):
        chain, at = [key], key
        while longest.get(at) and len(chain) < 4:
            at = longest[at]
            chain.append(at)
        message = (
            f"nesting too deep in extends: {key!r} extends through {heights[key]} levels "
            f"({' -> '.join(chain)} -> ...), and GitLab follows at most {limit}"
        )
        result.problems.append(ExtendsProblem((key,), "extends-depth", message))
        result.incomplete.add(key)
