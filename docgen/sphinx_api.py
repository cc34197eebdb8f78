"""The static API reference: one service's OpenAPI 3.x document rendered as docutils nodes.

The security schemes, then sections per tag with their operations (security requirements, parameters, request
body, responses, callbacks), the webhooks, then the schemas, each with a stable anchor that operations link to.
Bodies and parameters show their full property trees (:mod:`docgen.sphinx_schema`) and examples, the spec's
own or generated from the schema and marked so (:mod:`docgen.sphinx_samples`); descriptions are CommonMark
(:func:`docgen.sphinx_blocks.markdown`). The document is untrusted: every field is type-checked, and budgets
(per operation, per schema, per page) keep a page small whatever the spec's size.
"""

from __future__ import annotations

import json
from typing import Any

from docutils import nodes

from docgen.sphinx_blocks import Ids, as_dict, as_list, display_text, make_table, markdown, resolve_pointer
from docgen.sphinx_samples import Example, example_text, media_examples
from docgen.sphinx_schema import Budget, SchemaTree
from docgen.sphinx_security import requirement_nodes, scheme_block

__all__ = ["HTTP_METHODS", "ApiRenderer"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
OPERATION_NODES = 300  # property nodes one operation shows (parameters, request body, responses together)
SCHEMA_NODES = 80  # property nodes one component schema shows in the Schemas section
PAGE_NODES = 6_000  # property nodes one page shows; past it, bodies show their type and a link only
PAGE_EXAMPLE_CHARS = 600_000  # characters of examples one page shows
MAX_RESPONSES = 40  # responses shown per operation
MAX_HEADERS = 30  # headers shown per response
MAX_MEDIA_TYPES = 8  # media types shown per body
_CALLBACK_DEPTH = 1  # callbacks of callbacks are not expanded


class ApiRenderer:
    """docutils nodes for one service's OpenAPI 3.x document (untrusted: every field is type-checked)."""

    def __init__(self, spec: dict[str, Any], service: str, document: nodes.document) -> None:
        self.spec = spec
        self.service = service
        self.ids = Ids(document)
        self.components = as_dict(spec.get("components"))
        self.schemas = as_dict(self.components.get("schemas"))
        self.security_schemes = as_dict(self.components.get("securitySchemes"))
        # schema anchors first: operations link to them
        self.schema_ids = {name: self.ids.new(f"schema-{name}") for name in self.schemas}
        self.scheme_ids = {name: self.ids.new(f"security-{name}") for name in self.security_schemes}
        self.trees = SchemaTree(spec, self._ref)
        self.page_left = PAGE_NODES
        self.example_chars_left = PAGE_EXAMPLE_CHARS

    # -- schemas -----------------------------------------------------------------------------------------------

    def _ref(self, ref: str) -> nodes.Node:
        prefix = "#/components/schemas/"
        if ref.startswith(prefix):
            name = ref[len(prefix) :].replace("~1", "/").replace("~0", "~")
            if name in self.schema_ids:
                return nodes.reference(
                    name, name, refid=self.schema_ids[name], internal=True, classes=["docgen-schema-ref"]
                )
            return nodes.literal(name, name)
        return nodes.literal(display_text(ref), display_text(ref))

    def summary(self, schema: Any, depth: int = 0) -> list[nodes.Node]:
        """A one-line description of a schema: type, format, items, unions, enum; ``$ref`` as a link."""
        return self.trees.summary(schema, depth)

    def _budget(self, size: int) -> Budget:
        return Budget(max(0, min(size, self.page_left)))

    def _spend(self, budget: Budget, size: int) -> None:
        self.page_left -= max(0, min(size, self.page_left) - budget.left)

    def _tree(self, schema: Any, budget: Budget, *, expand_refs: bool = True) -> list[nodes.Node]:
        """A schema's property tree within ``budget``; a notice instead once the page's budget is spent."""
        if budget.left <= 0:
            view, _seen = self.trees.view(schema, frozenset())
            if view and (view.get("properties") or view.get("items") or view.get("oneOf") or view.get("anyOf")):
                text = "Properties not shown: this page's size budget is spent (see the Schemas section)."
                return [nodes.paragraph(text, text, classes=["docgen-more"])]
            return []
        return self.trees.tree(schema, budget, expand_refs=expand_refs)

    def _schema_block(self, name: str, schema: Any) -> nodes.container:
        block = nodes.container(ids=[self.schema_ids[name]], classes=["docgen-schema"])
        block += nodes.rubric(name, name, classes=["docgen-schema-name"])
        schema_dict = as_dict(schema)
        block += markdown(schema_dict.get("description"))
        properties = as_dict(schema_dict.get("properties"))
        if not properties or any(k in schema_dict for k in ("oneOf", "anyOf", "allOf", "$ref")):
            para = nodes.paragraph("", "Type: ", classes=["docgen-schema-type"])
            para.extend(self.summary(schema))
            para.extend(self.trees.flag_nodes(schema_dict))
            block += para
        block += self.trees.details(schema_dict)
        budget = self._budget(SCHEMA_NODES)
        block += self._tree(schema, budget, expand_refs=False)
        self._spend(budget, SCHEMA_NODES)
        return block

    # -- operations --------------------------------------------------------------------------------------------

    def _resolve(self, value: Any, kind: str) -> dict[str, Any]:
        """Follow local ``#/components/{kind}/X`` references (a few levels; cycles stop)."""
        for _ in range(5):
            value = as_dict(value)
            ref = value.get("$ref")
            if not isinstance(ref, str) or not ref.startswith(f"#/components/{kind}/"):
                return value
            _found, value = resolve_pointer(self.spec, ref)
        return as_dict(value)

    def _examples(self, examples: list[Example], media: str, several: bool) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for example in examples:
            if self.example_chars_left <= 0:
                text = "Example not shown: this page's size budget for examples is spent."
                out.append(nodes.paragraph(text, text, classes=["docgen-more"]))
                break
            label = nodes.paragraph(classes=["docgen-example-label"])
            title = example.label + (f" ({media})" if several else "")
            label += nodes.Text(display_text(title))
            if example.generated:
                label += nodes.Text(" ")
                note = "— generated from the schema"
                label += nodes.inline(note, note, classes=["docgen-generated"])
            out.append(label)
            if example.external:
                para = nodes.paragraph("", "Not shown here: ")
                para += nodes.literal(example.external, example.external)
                out.append(para)
                continue
            text, language = example_text(example.value, media)
            self.example_chars_left -= len(text)
            classes = ["docgen-example"] + (["docgen-example-generated"] if example.generated else [])
            out.append(nodes.literal_block(text, text, language=language, classes=classes))
        return out

    def _content(self, content: Any, budget: Budget, direction: str) -> list[nodes.Node]:
        """Per media type: ``media/type: schema``, the schema's property tree and the examples.

        Media types with the same schema share one tree; a generated example is shown once per schema."""
        groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        items = list(as_dict(content).items())
        for media, media_obj in items[:MAX_MEDIA_TYPES]:
            media_obj = as_dict(media_obj)
            try:
                key = json.dumps(media_obj.get("schema"), sort_keys=True, default=str)
            except (ValueError, TypeError, RecursionError):
                key = str(id(media_obj))
            groups.setdefault(key, []).append((display_text(media), media_obj))
        several = len(items) > 1
        out: list[nodes.Node] = []
        for group in groups.values():
            schema = group[0][1].get("schema")
            line = nodes.paragraph(classes=["docgen-media"])
            for i, (media, _obj) in enumerate(group):
                if i:
                    line += nodes.Text(", ")
                line += nodes.literal(media, media)
            line += nodes.Text(": ")
            line.extend(self.summary(schema))
            out.append(line)
            out += self._tree(schema, budget)
            generated_shown = False
            for media, media_obj in group:
                examples = media_examples(media, media_obj, self.spec, direction)
                if examples and examples[0].generated:
                    if generated_shown:
                        continue
                    generated_shown = True
                out += self._examples(examples, media, several)
        if len(items) > MAX_MEDIA_TYPES:
            text = f"{len(items) - MAX_MEDIA_TYPES} more media types not shown"
            out.append(nodes.paragraph(text, text, classes=["docgen-more"]))
        return out

    def _parameters(self, path_item: dict[str, Any], operation: dict[str, Any], budget: Budget) -> list[nodes.Node]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in as_list(path_item.get("parameters")) + as_list(operation.get("parameters")):
            param = self._resolve(raw, "parameters")
            if param:
                merged[(display_text(param.get("name")), display_text(param.get("in")))] = param
        if not merged:
            return []
        rows = []
        for (name, where), param in merged.items():
            schema = param.get("schema")
            if schema is None and isinstance(param.get("content"), dict):
                schema = as_dict(next(iter(param["content"].values()), {})).get("schema")
            type_cell = self.summary(schema)
            view, _seen = self.trees.view(schema, frozenset())
            type_cell.extend(self.trees.flag_nodes(view or {}))
            if param.get("deprecated") is True and "deprecated" not in self.trees.flags(view or {}):
                type_cell.append(nodes.Text(" (deprecated)"))
            example = param.get("example")
            if example is None:
                first = next(iter(as_dict(param.get("examples")).values()), None)
                example = as_dict(self._resolve(first, "examples")).get("value") if first is not None else None
            description: list[nodes.Node] = [
                *markdown(param.get("description")),
                *self.trees.details(view or {}, extra_example=example),
                *self._tree(schema, budget),
            ]
            rows.append(
                [
                    [nodes.literal(name, name)],
                    [nodes.Text(where)],
                    [nodes.Text("yes" if param.get("required") is True else "no")],
                    type_cell,
                    description,
                ]
            )
        return [
            nodes.rubric("Parameters", "Parameters"),
            make_table(["Name", "In", "Required", "Type", "Description"], rows, "docgen-parameters"),
        ]

    def _request_body(self, operation: dict[str, Any], budget: Budget) -> list[nodes.Node]:
        body = self._resolve(operation.get("requestBody"), "requestBodies")
        if not body:
            return []
        label = "Request body (required)" if body.get("required") is True else "Request body"
        out: list[nodes.Node] = [nodes.rubric(label, label)]
        out += markdown(body.get("description"))
        out += self._content(body.get("content"), budget, "request")
        return out

    def _headers(self, headers: Any) -> list[nodes.Node]:
        rows = []
        for name, raw in list(as_dict(headers).items())[:MAX_HEADERS]:
            header = self._resolve(raw, "headers")
            schema = header.get("schema")
            rows.append(
                [
                    [nodes.literal(display_text(name), display_text(name))],
                    self.summary(schema),
                    [*markdown(header.get("description")), *self.trees.details(as_dict(schema))],
                ]
            )
        if not rows:
            return []
        return [make_table(["Header", "Type", "Description"], rows, "docgen-headers")]

    def _responses(self, operation: dict[str, Any], budget: Budget) -> list[nodes.Node]:
        responses = list(as_dict(operation.get("responses")).items())
        if not responses:
            return []
        out: list[nodes.Node] = [nodes.rubric("Responses", "Responses")]
        for status, raw in responses[:MAX_RESPONSES]:
            response = self._resolve(raw, "responses")
            code = display_text(status)
            block = nodes.container(classes=["docgen-response", f"docgen-response-{code[:1].lower() or 'x'}"])
            head = nodes.paragraph(classes=["docgen-status-line"])
            head += nodes.literal(code, code, classes=["docgen-status"])
            block += head
            block += markdown(response.get("description"))
            block += self._headers(response.get("headers"))
            block += self._content(response.get("content"), budget, "response")
            out.append(block)
        if len(responses) > MAX_RESPONSES:
            text = f"{len(responses) - MAX_RESPONSES} more responses not shown"
            out.append(nodes.paragraph(text, text, classes=["docgen-more"]))
        return out

    def _security(self, op: dict[str, Any]) -> list[nodes.Node]:
        if "security" in op:
            return requirement_nodes(op.get("security"), self._scheme_link)
        return requirement_nodes(self.spec.get("security"), self._scheme_link, inherited=True)

    def _scheme_link(self, name: str) -> nodes.Node:
        label = display_text(name)
        if name in self.scheme_ids:
            return nodes.reference(label, label, refid=self.scheme_ids[name], internal=True)
        return nodes.literal(label, label)

    def _callbacks(self, op: dict[str, Any], depth: int) -> list[nodes.Node]:
        callbacks = as_dict(op.get("callbacks"))
        if not callbacks or depth >= _CALLBACK_DEPTH:
            return []
        out: list[nodes.Node] = [nodes.rubric("Callbacks", "Callbacks")]
        for name, raw in callbacks.items():
            callback = self._resolve(raw, "callbacks")
            for expression, raw_item in callback.items():
                if str(expression).startswith("x-"):
                    continue
                item = self._resolve(raw_item, "pathItems")
                for method in HTTP_METHODS:
                    cb_op = item.get(method)
                    if isinstance(cb_op, dict):
                        out.append(
                            self._operation(
                                display_text(expression),
                                method,
                                item,
                                cb_op,
                                kind="callback",
                                label=display_text(name),
                                depth=depth + 1,
                            )
                        )
        return out if len(out) > 1 else []

    def _operation(
        self,
        path: str,
        method: str,
        path_item: dict[str, Any],
        op: dict[str, Any],
        *,
        kind: str = "operation",
        label: str = "",
        depth: int = 0,
    ) -> nodes.section:
        op_id = op.get("operationId")
        if isinstance(op_id, str) and op_id:
            anchor = self.ids.new(f"op-{op_id}")
        else:
            anchor = self.ids.new(f"{'op' if kind == 'operation' else kind}-{method}-{label or path}")
        deprecated = op.get("deprecated") is True
        classes = [f"docgen-{kind}"] if kind == "operation" else ["docgen-operation", f"docgen-{kind}"]
        section = nodes.section(ids=[anchor], classes=classes + (["docgen-deprecated"] if deprecated else []))
        title = nodes.title()
        if kind == "callback" and label:
            title += nodes.inline(label, label, classes=["docgen-callback-name"])
            title += nodes.Text(": ")
        title += nodes.inline(method.upper(), method.upper(), classes=["docgen-method", f"docgen-method-{method}"])
        title += nodes.Text(" ")
        title += nodes.inline(path, path, classes=["docgen-path"])
        section += title
        lead = nodes.paragraph(classes=["docgen-summary"])
        if deprecated:
            lead += nodes.inline("Deprecated", "Deprecated", classes=["docgen-deprecated-marker"])
            lead += nodes.Text(" ")
        summary = display_text(op.get("summary")).strip()
        if summary:
            lead += nodes.strong(summary, summary)
        if isinstance(op_id, str) and op_id:
            lead += nodes.Text(" · operation ")
            lead += nodes.literal(display_text(op_id), display_text(op_id))
        if len(lead):
            section += lead
        section += markdown(op.get("description"))
        if kind != "callback":
            section += self._security(op)
        budget = self._budget(OPERATION_NODES)
        section += self._parameters(path_item, op, budget)
        section += self._request_body(op, budget)
        section += self._responses(op, budget)
        self._spend(budget, OPERATION_NODES)
        section += self._callbacks(op, depth)
        return section

    # -- the page ----------------------------------------------------------------------------------------------

    def _security_section(self) -> list[nodes.Node]:
        if not self.security_schemes:
            return []
        section = nodes.section(ids=[self.ids.new("security-schemes")], classes=["docgen-security-schemes"])
        section += nodes.title("Security schemes", "Security schemes")
        default = self.spec.get("security")
        if isinstance(default, list):
            section += requirement_nodes(default, self._scheme_link)
            section += nodes.paragraph(
                "", "Operations that do not say otherwise need the authorization above.", classes=["docgen-more"]
            )
        for name, scheme in self.security_schemes.items():
            section += scheme_block(display_text(name), scheme, self.scheme_ids[name])
        return [section]

    def _webhooks(self) -> list[nodes.Node]:
        webhooks = as_dict(self.spec.get("webhooks"))
        ops = []
        for name, raw in webhooks.items():
            item = self._resolve(raw, "pathItems")
            for method in HTTP_METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    ops.append(self._operation(display_text(name), method, item, op, kind="webhook"))
        if not ops:
            return []
        section = nodes.section(ids=[self.ids.new("webhooks")], classes=["docgen-webhooks"])
        section += nodes.title("Webhooks", "Webhooks")
        text = "Requests the API sends to your endpoints when events happen."
        section += nodes.paragraph(text, text)
        section.extend(ops)
        return [section]

    def render(self) -> list[nodes.Node]:
        """The security schemes, sections per tag with their operations, the webhooks, then the schemas."""
        spec = self.spec
        out: list[nodes.Node] = []
        info = as_dict(spec.get("info"))
        out += markdown(info.get("description"), classes=["docgen-api-description"])
        out += self._security_section()

        tag_docs: dict[str, Any] = {}
        for tag in as_list(spec.get("tags")):
            tag = as_dict(tag)
            if isinstance(tag.get("name"), str):
                tag_docs.setdefault(tag["name"], tag.get("description"))
        groups: dict[str, list[tuple[str, str, dict[str, Any], dict[str, Any]]]] = {t: [] for t in tag_docs}
        untagged: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        for path, path_item in as_dict(spec.get("paths")).items():
            path_item = self._resolve(path_item, "pathItems")
            for method in HTTP_METHODS:
                op = path_item.get(method)
                if not isinstance(op, dict):
                    continue
                tags = [t for t in as_list(op.get("tags")) if isinstance(t, str)]
                entry = (display_text(path), method, path_item, op)
                if tags:
                    groups.setdefault(tags[0], []).append(entry)
                else:
                    untagged.append(entry)
        prefix = f"{self.service}: "
        for tag, ops in groups.items():
            if not ops:
                continue
            label = display_text(tag[len(prefix) :] if tag.startswith(prefix) and len(tag) > len(prefix) else tag)
            section = nodes.section(ids=[self.ids.new(f"tag-{label}")], classes=["docgen-tag"])
            section += nodes.title(label, label)
            section += markdown(tag_docs.get(tag))
            section.extend(self._operation(*entry) for entry in ops)
            out.append(section)
        if untagged:
            section = nodes.section(ids=[self.ids.new("tag-other")], classes=["docgen-tag"])
            section += nodes.title("Operations", "Operations")
            section.extend(self._operation(*entry) for entry in untagged)
            out.append(section)
        webhooks = self._webhooks()
        if not groups and not untagged and not webhooks:
            out.append(nodes.paragraph("This API has no operations.", "This API has no operations."))
        out += webhooks

        if self.schemas:
            section = nodes.section(ids=[self.ids.new("schemas")], classes=["docgen-schemas"])
            section += nodes.title("Schemas", "Schemas")
            section.extend(self._schema_block(name, schema) for name, schema in self.schemas.items())
            out.append(section)
        return out
