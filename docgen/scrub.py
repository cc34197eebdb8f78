"""Remove internal details (hosts, repository URLs, ...) from what gets published, and say what was removed.

Rules come from the manifest's ``scrub`` list. Every removal is reported with the service, the file or
JSON path, the rule and how many matches there were; ``--strict`` turns any removal into a failure so
that a team fixes its source instead of relying on the scrubber.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autocore.text import json_path
from docgen.manifest import ScrubRule


@dataclass(frozen=True)
class Removal:
    """One rule matched in one place."""

    service: str
    where: str  # a docs file name, or a JSON path in the spec
    rule: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "where": self.where, "rule": self.rule, "count": self.count}

    def __str__(self) -> str:
        return f"{self.service}: {self.where}: scrubbed {self.count} match(es) of {self.rule}"


def scrub_text(text: str, rules: Sequence[ScrubRule]) -> tuple[str, list[tuple[str, int]]]:
    """``text`` with every rule applied in order, and ``[(rule name, matches)]`` for the rules that matched."""
    hits = []
    for rule in rules:
        text, count = rule.pattern.subn(rule.replace, text)
        if count:
            hits.append((rule.name, count))
    return text, hits


def scrub_markdown(
    service: str, docs: dict[str, bytes], rules: Sequence[ScrubRule]
) -> tuple[dict[str, bytes], list[Removal]]:
    """The service's docs with Markdown pages scrubbed (images are kept as they are)."""
    if not rules:
        return docs, []
    out: dict[str, bytes] = {}
    removals: list[Removal] = []
    for name, data in docs.items():
        if not name.lower().endswith(".md"):
            out[name] = data
            continue
        text, hits = scrub_text(data.decode("utf-8", errors="replace"), rules)
        removals += [Removal(service, name, rule, count) for rule, count in hits]
        out[name] = text.encode("utf-8")
    return out, removals


def scrub_spec(service: str, document: Any, rules: Sequence[ScrubRule]) -> tuple[Any, list[Removal]]:
    """A copy of the spec with every string value scrubbed; keys and ``$ref`` targets are left alone."""
    removals: list[Removal] = []
    if not rules:
        return document, removals

    def walk(node: Any, parts: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            return {k: (v if k == "$ref" else walk(v, (*parts, k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*parts, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            text, hits = scrub_text(node, rules)
            if hits:
                where = json_path(parts)
                removals.extend(Removal(service, where, rule, count) for rule, count in hits)
            return text
        return node

    return walk(document, ()), removals
