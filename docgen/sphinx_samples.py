"""Examples of request and response bodies: the ones a spec gives, else a sample generated from the schema.

:func:`media_examples` collects what an OpenAPI media type object offers (``example``, ``examples`` with their
summaries, the schema's own ``example``/``examples``); :func:`generate` builds a deterministic sample from a
schema (``example``, ``const``, ``default``, ``enum``, then type and format, within min/max and lengths),
following local ``$ref`` with cycle protection, a depth budget and a size budget. Pure data in, data out: the
renderer shows the results as JSON code blocks and marks generated ones as such.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

from docgen.sphinx_blocks import as_dict, as_list, display_text, follow_ref

__all__ = ["Example", "example_text", "generate", "media_examples"]

MAX_DEPTH = 8  # nesting levels of a generated sample
MAX_NODES = 300  # values in one generated sample
MAX_PROPERTIES = 40  # properties of one generated object
MAX_EXAMPLES = 5  # named examples shown per media type
MAX_EXAMPLE_CHARS = 12_000  # characters of one example's JSON text

_STRING_FORMATS = {
    "date-time": "2024-01-31T12:00:00Z",
    "date": "2024-01-31",
    "time": "12:00:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "/path",
    "iri-reference": "/path",
    "uri-template": "https://example.com/{id}",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "byte": "ZXhhbXBsZQ==",
    "binary": "<binary>",
    "password": "********",
    "json-pointer": "/a/b",
    "regex": "^.*$",
}
_CUT = object()  # a value left out (recursion, depth or size budget)


@dataclass(frozen=True)
class Example:
    """One example of a body: its label (``summary`` or name), value, and whether it was generated."""

    label: str
    value: Any
    generated: bool = False
    external: str = ""  # externalValue: a URL the example lives at (not fetched)


class _Sampler:
    def __init__(self, root: Any, direction: str) -> None:
        self.root = root
        self.direction = direction  # "request": no readOnly properties; "response": no writeOnly ones
        self.left = MAX_NODES

    def sample(self, schema: Any, depth: int, seen: frozenset[str]) -> Any:
        if depth > MAX_DEPTH or self.left <= 0:
            return _CUT
        if schema is True or schema is None:
            return None
        resolved, seen = follow_ref(self.root, schema, seen)
        if resolved is None:
            return _CUT
        self.left -= 1
        for key in ("example", "const", "default"):
            if key in resolved:
                return resolved[key]
        examples = resolved.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        enum = [v for v in as_list(resolved.get("enum")) if v is not None] or as_list(resolved.get("enum"))
        if enum:
            return enum[0]
        all_of = as_list(resolved.get("allOf"))
        if all_of:
            return self._all_of(resolved, all_of, depth, seen)
        for key in ("oneOf", "anyOf"):
            options = as_list(resolved.get(key))
            if options:
                own = {k: v for k, v in resolved.items() if k not in {"oneOf", "anyOf", "discriminator"}}
                choice = options[0]
                for option in options:  # prefer a non-null alternative
                    if as_dict(option).get("type") != "null":
                        choice = option
                        break
                if own.get("properties"):
                    return self._all_of(own, [choice], depth, seen)
                return self.sample(choice, depth + 1, seen)
        kind = self._type(resolved)
        if kind == "object":
            return self._object(resolved, depth, seen)
        if kind == "array":
            return self._array(resolved, depth, seen)
        if kind == "string":
            return self._string(resolved)
        if kind in {"integer", "number"}:
            return self._number(resolved, kind)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return {} if depth == 0 else None

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        raw = schema.get("type")
        types = [raw] if isinstance(raw, str) else [t for t in as_list(raw) if isinstance(t, str)]
        non_null = [t for t in types if t != "null"]
        if non_null:
            return non_null[0]
        if types:
            return "null"
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return ""

    def _all_of(self, schema: dict[str, Any], parts: list[Any], depth: int, seen: frozenset[str]) -> Any:
        merged: dict[str, Any] = {}
        other: Any = _CUT
        own = {k: v for k, v in schema.items() if k != "allOf"}
        for part in [*parts, own]:
            value = self.sample(part, depth + 1, seen) if part is not own else self._own(own, depth, seen)
            if isinstance(value, dict):
                merged.update(value)
            elif value is not _CUT and value is not None:
                other = value
        if merged or other is _CUT:
            return merged
        return other

    def _own(self, own: dict[str, Any], depth: int, seen: frozenset[str]) -> Any:
        if not own.get("properties") and not own.get("additionalProperties"):
            return _CUT
        return self._object(own, depth, seen)

    def _object(self, schema: dict[str, Any], depth: int, seen: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        skip = "readOnly" if self.direction == "request" else "writeOnly"
        for name, prop in list(as_dict(schema.get("properties")).items())[:MAX_PROPERTIES]:
            if as_dict(prop).get(skip) is True:
                continue
            value = self.sample(prop, depth + 1, seen)
            if value is not _CUT:
                out[str(name)] = value
        extra = schema.get("additionalProperties")
        if not out and isinstance(extra, dict):
            value = self.sample(extra, depth + 1, seen)
            if value is not _CUT:
                out["key"] = value
        return out

    def _array(self, schema: dict[str, Any], depth: int, seen: frozenset[str]) -> list[Any]:
        items = schema.get("items")
        if isinstance(items, list):  # 2019-09 tuple form, or prefixItems-like
            values = [self.sample(item, depth + 1, seen) for item in items[:MAX_PROPERTIES]]
            return [v for v in values if v is not _CUT]
        value = self.sample(items if items is not None else {}, depth + 1, seen)
        if value is _CUT:
            return []
        count = schema.get("minItems")
        count = count if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= 3 else 1
        return [value] * count

    @staticmethod
    def _string(schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        value = _STRING_FORMATS.get(fmt, "string") if isinstance(fmt, str) else "string"
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and not isinstance(low, bool) and len(value) < low:
            value = value + "x" * min(low - len(value), 200)
        if isinstance(high, int) and not isinstance(high, bool) and 0 <= high < len(value):
            value = value[:high]
        return value

    @staticmethod
    def _number(schema: dict[str, Any], kind: str) -> int | float:
        def num(key: str) -> float | None:
            value = schema.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                return value
            return None

        low, high = num("minimum"), num("maximum")
        ex_low, ex_high = num("exclusiveMinimum"), num("exclusiveMaximum")
        step = 1 if kind == "integer" else 0.5
        value: float = 0
        if low is not None:
            value = low
        elif ex_low is not None:
            value = ex_low + step
        elif high is not None and high < 0:
            value = high
        elif ex_high is not None and ex_high <= 0:
            value = ex_high - step
        multiple = num("multipleOf")
        if multiple and multiple > 0:
            value = math.ceil(value / multiple) * multiple
        if kind == "integer":
            return int(math.ceil(value))
        return int(value) if float(value).is_integer() else value


def generate(schema: Any, root: Any, direction: str = "response") -> Any:
    """A deterministic sample of ``schema`` (local refs resolved in ``root``); None if nothing can be said."""
    value = _Sampler(root, direction).sample(schema, 0, frozenset())
    return None if value is _CUT else value


def _json_media(media: str) -> bool:
    media = media.split(";", 1)[0].strip().lower()
    return "json" in media or media in {"*/*", "application/x-www-form-urlencoded", "multipart/form-data"}


def media_examples(media: str, media_obj: Any, root: Any, direction: str) -> list[Example]:
    """The examples of one media type: the spec's own first, else a generated one (JSON-like types only)."""
    media_obj = as_dict(media_obj)
    found: list[Example] = []
    if "example" in media_obj:
        found.append(Example("Example", media_obj["example"]))
    for name, raw in list(as_dict(media_obj.get("examples")).items())[:MAX_EXAMPLES]:
        example, _seen = follow_ref(root, raw, frozenset())
        example = as_dict(example)
        label = display_text(example.get("summary")).strip() or display_text(name)
        if "value" in example:
            found.append(Example(label, example["value"]))
        elif isinstance(example.get("externalValue"), str):
            found.append(Example(label, None, external=display_text(example["externalValue"])))
    if found:
        return found
    schema, _seen = follow_ref(root, media_obj.get("schema"), frozenset())
    schema = as_dict(schema)
    if "example" in schema:
        return [Example("Example", schema["example"])]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return [Example("Example", value) for value in schema["examples"][:MAX_EXAMPLES]]
    if not _json_media(media) or "schema" not in media_obj:
        return []
    value = generate(media_obj.get("schema"), root, direction)
    if value is None or value == {} and not schema:
        return []
    return [Example("Example", value, generated=True)]


def example_text(value: Any, media: str = "application/json") -> tuple[str, str]:
    """``(text, language)`` of an example as shown: JSON indented (a string holding JSON is parsed first), a
    non-JSON string as it is; cut to :data:`MAX_EXAMPLE_CHARS` (then shown as plain text)."""
    if isinstance(value, str) and _json_media(media) and value.strip()[:1] in {"{", "["}:
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(value)
    if isinstance(value, str) and not _json_media(media):
        text, language = value, "text"
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str, allow_nan=False)
            language = "json"
        except (ValueError, TypeError, RecursionError):
            text, language = display_text(value), "text"
    text = display_text(text)
    if len(text) > MAX_EXAMPLE_CHARS:
        text, language = text[:MAX_EXAMPLE_CHARS] + "\n… (cut: the example is longer)", "text"
    return text, language
