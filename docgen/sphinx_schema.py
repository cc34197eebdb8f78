"""Schemas as docutils nodes: a one-line type summary, the constraints, and the full property tree.

:class:`SchemaTree` renders what a body, a parameter or a component schema holds: nested objects, array items,
``allOf`` merged into one object, ``oneOf``/``anyOf`` listed as alternatives, local ``$ref`` followed (a schema
that contains itself shows its name and "(recursive)"), with required marks, types, formats, enums,
constraints, defaults, examples, nullability, readOnly/writeOnly and deprecation. Budgets keep a page small
whatever the spec: :data:`MAX_DEPTH` levels (then "…"), :data:`MAX_PROPERTIES` properties per object and a
:class:`Budget` of property nodes shared by everything one operation shows (then "N more properties").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docutils import nodes

from docgen.sphinx_blocks import as_dict, as_list, display_text, follow_ref, markdown, shorten

__all__ = ["MAX_DEPTH", "MAX_PROPERTIES", "REFERENCE_CSS", "Budget", "SchemaTree"]

MAX_DEPTH = 8  # nesting levels of a property tree, then "…"
MAX_PROPERTIES = 60  # properties shown per object
MAX_LIST = 12  # enum values / union members in a one-line summary before "…"
MAX_ALTERNATIVES = 12  # oneOf/anyOf alternatives expanded
_MAX_ALL_OF = 24  # allOf members merged (nested allOf included)
_MAX_VALUE = 80  # characters of a default/example shown inline

# The reference's own styles, appended to the portal's docgen.css (see docgen.site).
REFERENCE_CSS = b"""/* docgen: the API reference's property trees, examples and security */
.docgen-props, .docgen-props ul { list-style: none; margin: .2em 0 .4em 0; padding-left: 0; }
.docgen-props .docgen-props { margin-left: .4em; padding-left: 1em; border-left: 1px solid #d8dde3; }
.docgen-prop { margin: .25em 0; }
.docgen-prop > p, .docgen-prop .docgen-markdown p { margin: .1em 0; }
.docgen-prop-name { font-weight: bold; background: none; }
.docgen-required { color: #d41f1c; font-size: .8em; margin-left: .3em; }
.docgen-prop-type { color: #555; font-size: .9em; margin-left: .3em; }
.docgen-flag { font-size: .75em; border: 1px solid #999; border-radius: 3px; padding: 0 .3em; color: #555; }
.docgen-flag-deprecated { border-color: #d52c2c; color: #d52c2c; }
.docgen-recursive, .docgen-cut, .docgen-more { color: #777; font-style: italic; }
.docgen-constraints { color: #666; font-size: .85em; }
.docgen-union { font-weight: bold; font-size: .9em; margin: .3em 0 0 0; }
.docgen-example-label { font-size: .9em; font-weight: bold; margin: .6em 0 .2em 0; }
.docgen-example-label .docgen-generated { font-weight: normal; color: #777; font-style: italic; }
.docgen-response { margin: .4em 0 1em 0; padding-left: .6em; border-left: 3px solid #ddd; }
.docgen-response-2 { border-left-color: #1d8127; }
.docgen-response-4, .docgen-response-5 { border-left-color: #d41f1c; }
.docgen-status { font-weight: bold; }
.docgen-security { font-size: .9em; }
.docgen-security-scheme { margin-bottom: 1em; }
.docgen-md-br { display: block; }
.docgen-md-strike { text-decoration: line-through; }
.docgen-markdown .docgen-md-heading { font-size: 1em; }
section.docgen-webhook > h3, section.docgen-callback > h4 { font-size: 1.1em; }
"""


@dataclass
class Budget:
    """Property nodes one operation (or one component schema) may still show, and how many it left out."""

    left: int
    cut: int = 0


def _types(schema: dict[str, Any]) -> list[str]:
    raw = schema.get("type")
    types = [raw] if isinstance(raw, str) else [t for t in as_list(raw) if isinstance(t, str)]
    if not types:
        if "properties" in schema or "additionalProperties" in schema or "patternProperties" in schema:
            types = ["object"]
        elif "items" in schema:
            types = ["array"]
    if schema.get("nullable") is True and "null" not in types:
        types.append("null")
    return types


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_text(value: Any) -> str:
    return shorten(display_text(value), _MAX_VALUE)


def constraints(schema: dict[str, Any]) -> list[str]:
    """The validation keywords of one schema as short phrases (``>= 1``, ``length 1..64``, ``pattern ^a$``)."""
    out: list[str] = []
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _number(low):
        out.append(f"{'>' if ex_low is True else '>='} {display_text(low)}")
    if _number(ex_low):
        out.append(f"> {display_text(ex_low)}")
    if _number(high):
        out.append(f"{'<' if ex_high is True else '<='} {display_text(high)}")
    if _number(ex_high):
        out.append(f"< {display_text(ex_high)}")
    if _number(schema.get("multipleOf")):
        out.append(f"multiple of {display_text(schema['multipleOf'])}")
    for low_key, high_key, what in (
        ("minLength", "maxLength", "length"),
        ("minItems", "maxItems", "items"),
        ("minProperties", "maxProperties", "properties"),
    ):
        lo, hi = schema.get(low_key), schema.get(high_key)
        lo = lo if _number(lo) else None
        hi = hi if _number(hi) else None
        if lo is not None and hi is not None:
            out.append(f"{what} {display_text(lo)}..{display_text(hi)}")
        elif lo is not None:
            out.append(f"{what} >= {display_text(lo)}")
        elif hi is not None:
            out.append(f"{what} <= {display_text(hi)}")
    if schema.get("uniqueItems") is True:
        out.append("unique items")
    if isinstance(schema.get("pattern"), str):
        out.append(f"pattern {shorten(display_text(schema['pattern']), 120)}")
    return out


class SchemaTree:
    """Schemas of one OpenAPI document (``root``, where local references resolve) as docutils nodes.

    ``link(ref)`` gives the node that names a referenced schema (a link to its anchor on the page, or a literal).
    """

    def __init__(self, root: dict[str, Any], link: Callable[[str], nodes.Node]) -> None:
        self.root = root
        self.link = link

    # -- one line ----------------------------------------------------------------------------------------------

    def summary(self, schema: Any, depth: int = 0) -> list[nodes.Node]:
        """A one-line description of a schema: type, format, items, unions, enum; ``$ref`` as a link."""
        if depth > 3:
            return [nodes.Text("…")]
        if schema is False:
            return [nodes.Text("never")]
        if not isinstance(schema, dict) or not schema:
            return [nodes.Text("any")]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return [self.link(ref)]
        out: list[nodes.Node] = []
        for key, sep in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            parts = as_list(schema.get(key))
            if parts:
                out.append(nodes.Text(f"{key}("))
                for i, part in enumerate(parts[:MAX_LIST]):
                    if i:
                        out.append(nodes.Text(sep))
                    out.extend(self.summary(part, depth + 1))
                if len(parts) > MAX_LIST:
                    out.append(nodes.Text(sep + "…"))
                out.append(nodes.Text(")"))
                return out
        for i, kind in enumerate(_types(schema) or ["any"]):
            if i:
                out.append(nodes.Text(" | "))
            if kind == "array":
                out.append(nodes.Text("array of "))
                out.extend(self.summary(schema.get("items"), depth + 1))
            elif (
                kind == "object"
                and isinstance(schema.get("additionalProperties"), dict)
                and not schema.get("properties")
            ):
                out.append(nodes.Text("map of "))
                out.extend(self.summary(schema.get("additionalProperties"), depth + 1))
            else:
                out.append(nodes.Text(display_text(kind)))
                if isinstance(schema.get("format"), str) and kind != "null":
                    out.append(nodes.Text(f" ({display_text(schema['format'])})"))
        enum = as_list(schema.get("enum"))
        if enum:
            values = ", ".join(display_text(v) for v in enum[:MAX_LIST]) + (", …" if len(enum) > MAX_LIST else "")
            out.append(nodes.Text(", one of "))
            out.append(nodes.literal(values, values))
        elif "const" in schema:
            out.append(nodes.Text(" = "))
            out.append(nodes.literal(display_text(schema["const"]), display_text(schema["const"])))
        return out

    @staticmethod
    def flags(schema: Any) -> list[str]:
        schema = as_dict(schema)
        names = {"readOnly": "read-only", "writeOnly": "write-only", "deprecated": "deprecated"}
        return [label for key, label in names.items() if schema.get(key) is True]

    def flag_nodes(self, schema: Any) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for flag in self.flags(schema):
            out += [nodes.Text(" "), nodes.inline(flag, flag, classes=["docgen-flag", f"docgen-flag-{flag}"])]
        return out

    def details(self, schema: Any, extra_example: Any = None) -> list[nodes.Node]:
        """Constraints, default and example of one schema, as one small paragraph (nothing when none)."""
        schema = as_dict(schema)
        parts: list[list[nodes.Node]] = [[nodes.Text(text)] for text in constraints(schema)]
        enum = as_list(schema.get("enum"))
        if len(enum) > MAX_LIST:
            values = ", ".join(display_text(v) for v in enum[:100]) + (", …" if len(enum) > 100 else "")
            parts.append([nodes.Text("allowed: "), nodes.literal(values, values)])
        if "default" in schema:
            text = _value_text(schema["default"])
            parts.append([nodes.Text("default: "), nodes.literal(text, text)])
        example = extra_example
        if example is None:
            if "example" in schema:
                example = schema["example"]
            elif isinstance(schema.get("examples"), list) and schema["examples"]:
                example = schema["examples"][0]
        if example is not None:
            text = _value_text(example)
            parts.append([nodes.Text("example: "), nodes.literal(text, text)])
        if not parts:
            return []
        para = nodes.paragraph(classes=["docgen-constraints"])
        for i, part in enumerate(parts):
            if i:
                para += nodes.Text(" · ")
            para.extend(part)
        return [para]

    # -- the tree ----------------------------------------------------------------------------------------------

    def view(self, schema: Any, seen: frozenset[str]) -> tuple[dict[str, Any] | None, frozenset[str]]:
        """``schema`` with references followed and ``allOf`` merged; None when it refers back to ``seen``."""
        resolved, seen = follow_ref(self.root, schema, seen)
        if resolved is None:
            return None, seen
        return self._merge_all_of(resolved, seen, [0])

    def _merge_all_of(
        self, schema: dict[str, Any], seen: frozenset[str], count: list[int]
    ) -> tuple[dict[str, Any], frozenset[str]]:
        parts = as_list(schema.get("allOf"))
        if not parts:
            return schema, seen
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in parts:
            count[0] += 1
            if count[0] > _MAX_ALL_OF:
                break
            resolved, seen = follow_ref(self.root, part, seen)
            if resolved is None:
                continue  # a member that contains the schema itself adds nothing new
            resolved, seen = self._merge_all_of(resolved, seen, count)
            for key, value in resolved.items():
                if key == "properties":
                    properties.update(as_dict(value))
                elif key == "required":
                    required += [r for r in as_list(value) if isinstance(r, str)]
                elif key not in merged:
                    merged[key] = value
        properties.update(as_dict(schema.get("properties")))
        required += [r for r in as_list(schema.get("required")) if isinstance(r, str)]
        if properties:
            merged["properties"] = properties
            merged.setdefault("type", "object")
        if required:
            merged["required"] = list(dict.fromkeys(required))
        return merged, seen

    def tree(self, schema: Any, budget: Budget, *, expand_refs: bool = True) -> list[nodes.Node]:
        """What ``schema`` holds (properties, items, alternatives) as nested lists; nothing for a scalar.

        ``expand_refs`` False: a referenced schema is named (a link), never expanded (the Schemas section)."""
        ref = as_dict(schema).get("$ref")
        if isinstance(ref, str) and not expand_refs:
            return []
        view, seen = self.view(schema, frozenset())
        if view is None:
            return []
        return self._contents(view, 0, seen, budget, expand_refs)

    def _contents(
        self, schema: dict[str, Any], depth: int, seen: frozenset[str], budget: Budget, expand: bool
    ) -> list[nodes.Node]:
        kinds = _types(schema)
        has_props = bool(as_dict(schema.get("properties")) or as_dict(schema.get("patternProperties")))
        extra = schema.get("additionalProperties")
        has_extra = isinstance(extra, dict) and bool(extra)
        items = schema.get("items")
        unions = [(k, as_list(schema.get(k))) for k in ("oneOf", "anyOf") if as_list(schema.get(k))]
        array_items = "array" in kinds and isinstance(items, dict) and bool(items)
        if not (has_props or has_extra or array_items or unions):
            return []
        if depth >= MAX_DEPTH:
            return [nodes.paragraph("…", "…", classes=["docgen-cut"])]
        out: list[nodes.Node] = []
        if has_props or has_extra:
            out.append(self._properties(schema, depth, seen, budget, expand))
        if array_items:
            out.extend(self._items(items, depth, seen, budget, expand))
        for key, alternatives in unions:
            out.extend(self._alternatives(key, schema, alternatives, depth, seen, budget, expand))
        if isinstance(schema.get("not"), dict):
            para = nodes.paragraph("", "Must not be: ", classes=["docgen-union"])
            para.extend(self.summary(schema["not"]))
            out.append(para)
        return out

    def _properties(
        self, schema: dict[str, Any], depth: int, seen: frozenset[str], budget: Budget, expand: bool
    ) -> nodes.bullet_list:
        listing = nodes.bullet_list(classes=["docgen-props"])
        required = {r for r in as_list(schema.get("required")) if isinstance(r, str)}
        entries: list[tuple[str, Any, bool]] = [
            (display_text(name), prop, name in required) for name, prop in as_dict(schema.get("properties")).items()
        ]
        entries += [(f"/{display_text(p)}/", s, False) for p, s in as_dict(schema.get("patternProperties")).items()]
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            entries.append(("[any other name]" if entries else "[name]", extra, False))
        shown = 0
        for name, prop, is_required in entries:
            if shown >= MAX_PROPERTIES or budget.left <= 0:
                break
            listing += self._property(name, prop, is_required, depth + 1, seen, budget, expand)
            shown += 1
        more = len(entries) - shown
        if more:
            budget.cut += more
            text = f"{more} more propert{'y' if more == 1 else 'ies'} not shown"
            listing += nodes.list_item("", nodes.paragraph(text, text, classes=["docgen-more"]))
        return listing

    def _items(self, items: Any, depth: int, seen: frozenset[str], budget: Budget, expand: bool) -> list[nodes.Node]:
        ref = as_dict(items).get("$ref")
        if isinstance(ref, str) and not expand:
            return []
        view, seen = self.view(items, seen)
        if view is None:
            return []
        inner = self._contents(view, depth + 1, seen, budget, expand)
        if not inner or depth > 0:  # a property's type already says "array of X"
            return inner
        label = nodes.paragraph("", "Items: ", classes=["docgen-union"])
        label.extend(self.summary(items))
        return [label, *inner]

    def _alternatives(
        self,
        key: str,
        schema: dict[str, Any],
        alternatives: list[Any],
        depth: int,
        seen: frozenset[str],
        budget: Budget,
        expand: bool,
    ) -> list[nodes.Node]:
        label = "One of" if key == "oneOf" else "Any of"
        discriminator = as_dict(schema.get("discriminator")).get("propertyName")
        head = nodes.paragraph("", f"{label}:", classes=["docgen-union"])
        if isinstance(discriminator, str):
            head += nodes.Text(" (chosen by ")
            head += nodes.literal(display_text(discriminator), display_text(discriminator))
            head += nodes.Text(")")
        listing = nodes.bullet_list(classes=["docgen-props", "docgen-alternatives"])
        shown = 0
        for index, alternative in enumerate(alternatives, start=1):
            if shown >= MAX_ALTERNATIVES or budget.left <= 0:
                break
            budget.left -= 1
            shown += 1
            item = nodes.list_item(classes=["docgen-prop", "docgen-alternative"])
            para = nodes.paragraph(classes=["docgen-prop-head"])
            target, _seen = follow_ref(self.root, alternative, frozenset())
            title = display_text(as_dict(target).get("title")).strip()
            name = f"Option {index}" + (f": {title}" if title else "")
            para += nodes.inline(name, name, classes=["docgen-prop-name"])
            para += nodes.Text(" ")
            para += nodes.inline("", "", *self.summary(alternative), classes=["docgen-prop-type"])
            item += para
            ref = as_dict(alternative).get("$ref")
            if isinstance(ref, str) and not expand:
                listing += item
                continue
            view, inner_seen = self.view(alternative, seen)
            if view is None:
                para += nodes.Text(" ")
                para += nodes.inline("(recursive)", "(recursive)", classes=["docgen-recursive"])
            else:
                if not isinstance(ref, str):
                    item.extend(markdown(view.get("description")))
                item.extend(self.details(view))
                item.extend(self._contents(view, depth + 1, inner_seen, budget, expand))
            listing += item
        more = len(alternatives) - shown
        if more:
            budget.cut += more
            text = f"{more} more alternative{'s' if more > 1 else ''} not shown"
            listing += nodes.list_item("", nodes.paragraph(text, text, classes=["docgen-more"]))
        return [head, listing]

    def _property(
        self, name: str, prop: Any, required: bool, depth: int, seen: frozenset[str], budget: Budget, expand: bool
    ) -> nodes.list_item:
        budget.left -= 1
        item = nodes.list_item(classes=["docgen-prop"])
        head = nodes.paragraph(classes=["docgen-prop-head"])
        head += nodes.literal(name, name, classes=["docgen-prop-name"])
        if required:
            head += nodes.Text(" ")
            head += nodes.inline("required", "required", classes=["docgen-required"])
        item += head
        prop_dict = as_dict(prop)
        ref = prop_dict.get("$ref")
        if isinstance(ref, str) and not expand:
            view, inner_seen = follow_ref(self.root, prop, seen)
            recursive = False
        else:
            view, inner_seen = self.view(prop, seen)
            recursive = view is None
        type_nodes: list[nodes.Node] = []
        if isinstance(ref, str):
            if view and not recursive:
                type_nodes += self.summary(view)
                type_nodes.append(nodes.Text(" · "))
            type_nodes.append(self.link(ref))
        else:
            type_nodes += self.summary(view if view is not None else prop)
        head += nodes.Text(" ")
        head += nodes.inline("", "", *type_nodes, classes=["docgen-prop-type"])
        head.extend(self.flag_nodes(view if view else prop_dict))
        if recursive:
            head += nodes.Text(" ")
            head += nodes.inline("(recursive)", "(recursive)", classes=["docgen-recursive"])
            item.extend(markdown(prop_dict.get("description")))
            return item
        view = view or {}
        item.extend(markdown(prop_dict.get("description") if "description" in prop_dict else view.get("description")))
        item.extend(self.details(view))
        if not (isinstance(ref, str) and not expand):
            item.extend(self._contents(view, depth, inner_seen, budget, expand))
        return item
