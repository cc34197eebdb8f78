"""Strict loading of untrusted JSON and YAML: duplicate keys are refused (both formats would keep the
last one silently), YAML keeps dates as the strings they were written as, and every load has budgets.

The budgets (``Budget``) bound what one input may cost before it is refused with a one-line
``BudgetExceededError`` naming the budget: its size in bytes, its nesting depth, the number of nodes it
stands for once YAML aliases are expanded (a "billion laughs" file is a few hundred bytes), and the
digits of an integer (Python refuses more than 4,300 with a traceback). Numbers that are not finite
(``1e999``, ``.nan``), which JSON cannot carry, are refused with ``NotFiniteError``. Everything is
checked while the document is composed, before anything is built from it, so the cost of a hostile
input stays linear in its size.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from autocore.errors import BudgetExceededError, NotFiniteError


@dataclass(frozen=True)
class Budget:
    """What one untrusted document may cost. The defaults fit real specs, CI files and manifests with room."""

    max_bytes: int = 32 * 1024 * 1024
    max_depth: int = 128
    max_nodes: int = 500_000  # YAML nodes, aliases expanded: about 350 MB and a few seconds of composing at most
    max_int_digits: int = 100
    allow_non_finite: bool = False


DEFAULT_BUDGET = Budget()
_PLAIN_INT = re.compile(r"[-+]?(0[box])?[0-9a-fA-F_]+")
_PLAIN_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF|nan|NaN|NAN)")


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: ValueError on a key that appears twice in one object."""
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: find the first key seen twice (dict() alone is C-fast)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


class StrictYAMLLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and keeps dates as strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        raise ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"found duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    """One line for a YAML parse error: ``SOURCE:LINE: not valid YAML: PROBLEM``."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        return f"{where}: not valid YAML: {exc.problem or exc.context or 'parse error'}"
    return f"{source}: not valid YAML: {' '.join(str(exc).split())}"


class _BudgetedComposer:
    """Mixed into a PyYAML loader: counts depth and (alias-expanded) nodes while composing, checks scalars."""

    budget: Budget = DEFAULT_BUDGET
    source: str = "<input>"
    _depth = 0
    _nodes = 0
    _sizes: dict[int, int]

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if not hasattr(self, "_sizes"):
            self._sizes = {}
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)  # type: ignore[attr-defined]
            self._count(self._sizes.get(id(target), 1) if target is not None else 1)
            return super().compose_node(parent, index)  # type: ignore[misc]
        if isinstance(event, ScalarEvent) and event.style is None:
            _check_plain_scalar(event.value, self.budget, self.source)
        if getattr(event, "anchor", None) is not None:
            # YAML 1.1 and 1.2: "anchors need not be unique"; an alias means the most recent node with the anchor
            # (Ruby's Psych, Go's yaml.v3 and Redocly accept a redefined anchor; PyYAML refuses it, so forget the old).
            self.anchors.pop(event.anchor, None)  # type: ignore[attr-defined]
        self._depth += 1
        if self._depth > self.budget.max_depth:
            raise BudgetExceededError(
                self.source,
                "nesting depth",
                self.budget.max_depth,
                f"nested deeper than {self.budget.max_depth} levels",
            )
        started = self._nodes
        self._count(1)
        try:
            node = super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1
        self._sizes[id(node)] = self._nodes - started
        return node

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > self.budget.max_nodes:
            limit = self.budget.max_nodes
            found = f"more than {limit} nodes (YAML aliases expanded)"
            raise BudgetExceededError(self.source, "node count", limit, found)


def _check_plain_scalar(value: str, budget: Budget, source: str) -> None:
    if len(value) > budget.max_int_digits and _PLAIN_INT.fullmatch(value):
        raise _too_long(source, budget, value)
    if budget.allow_non_finite:
        return
    if _NON_FINITE.fullmatch(value) or (_PLAIN_FLOAT.fullmatch(value) and _overflows(value)):
        raise NotFiniteError(source, value[:40])


def _too_deep(source: str, budget: Budget) -> BudgetExceededError:
    return BudgetExceededError(
        source, "nesting depth", budget.max_depth, f"nested deeper than {budget.max_depth} levels"
    )


def _too_long(source: str, budget: Budget, digits: str) -> BudgetExceededError:
    return BudgetExceededError(source, "integer size", budget.max_int_digits, f"an integer of {len(digits)} digits")


def _overflows(text: str) -> bool:
    try:
        return math.isinf(float(text.replace("_", "")))
    except ValueError:
        return False


@cache
def _budgeted(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    return type(f"Budgeted{loader.__name__}", (_BudgetedComposer, loader), {})


def _check_size(text: str | bytes, source: str, budget: Budget) -> None:
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > budget.max_bytes:
        raise BudgetExceededError(source, "size", budget.max_bytes, f"{size} bytes")


def load_yaml(
    text: str | bytes,
    source: str,
    *,
    budget: Budget = DEFAULT_BUDGET,
    loader: type[yaml.SafeLoader] = StrictYAMLLoader,
) -> Any:
    """One YAML document, through ``loader`` (strict by default), within ``budget``.

    Raises ``BudgetExceededError`` past a budget, ``yaml.YAMLError`` when it is not valid YAML (see
    ``yaml_problem`` for its one line).
    """
    _check_size(text, source, budget)
    instance = _budgeted(loader)(text)
    instance.budget = budget  # type: ignore[attr-defined]
    instance.source = source  # type: ignore[attr-defined]
    try:
        return instance.get_single_data()
    finally:
        instance.dispose()


def load_yaml_documents(
    text: str | bytes,
    source: str,
    *,
    budget: Budget = DEFAULT_BUDGET,
    loader: type[yaml.SafeLoader] = StrictYAMLLoader,
    inspect: Callable[[Node], None] | None = None,
) -> list[Any]:
    """Every document of a YAML stream (a CI/CD component: its ``spec:`` header, then its body), within
    ``budget`` for the stream as a whole; the errors are ``load_yaml``'s. ``inspect`` sees each document's
    composed node tree (with its line numbers) before it is constructed."""
    _check_size(text, source, budget)
    instance = _budgeted(loader)(text)
    instance.budget = budget  # type: ignore[attr-defined]
    instance.source = source  # type: ignore[attr-defined]
    try:
        documents = []
        while instance.check_node():
            node = instance.get_node()
            if inspect is not None:
                inspect(node)
            documents.append(instance.construct_document(node))
        return documents
    finally:
        instance.dispose()


def load_json(text: str | bytes, source: str, *, budget: Budget = DEFAULT_BUDGET) -> Any:
    """One JSON document with duplicate keys refused, within ``budget``.

    Raises ``BudgetExceededError`` past a budget, ``ValueError`` when it is not valid JSON.
    """
    _check_size(text, source, budget)

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > budget.max_int_digits:
            raise BudgetExceededError(
                source, "integer size", budget.max_int_digits, f"an integer of {len(digits)} digits"
            )
        return int(digits)

    def number(digits: str) -> float:
        value = float(digits)
        if math.isinf(value) and not budget.allow_non_finite:
            raise NotFiniteError(source, digits[:40])
        return value

    def constant(name: str) -> float:
        if not budget.allow_non_finite:
            raise NotFiniteError(source, name)
        return float(name)

    try:
        document = json.loads(
            text,
            object_pairs_hook=reject_duplicate_keys,
            parse_int=integer,
            parse_float=number,
            parse_constant=constant,
        )
    except RecursionError:
        raise _too_deep(source, budget) from None
    _check_depth(document, source, budget)
    return document


def _check_depth(document: Any, source: str, budget: Budget) -> None:
    """Walk the parsed document without recursion; refuse it past ``budget.max_depth``."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > budget.max_depth:
            raise _too_deep(source, budget)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
