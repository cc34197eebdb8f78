"""The static API reference: one service's OpenAPI 3.x document rendered as docutils nodes.

Sections per tag with their operations (parameters, request body, responses), then the schemas, each with a
stable anchor that operations link to. The document is untrusted: every field is type-checked, and every
description is shown as plain-text paragraphs.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes

from docgen.sphinx_blocks import Ids, as_dict, as_list, display_text, make_table, paragraphs

__all__ = ["HTTP_METHODS", "ApiRenderer"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_LIST = 12  # enum values / union members shown before "…"


class ApiRenderer:
    """docutils nodes for one service's OpenAPI 3.x document (untrusted: every field is type-checked)."""

    def __init__(self, spec: dict[str, Any], service: str, document: nodes.document) -> None:
        self.spec = spec
        self.service = service
        self.ids = Ids(document)
        self.components = as_dict(spec.get("components"))
        self.schemas = as_dict(self.components.get("schemas"))
        # schema anchors first: operations link to them
        self.schema_ids = {name: self.ids.new(f"schema-{name}") for name in self.schemas}

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
        if depth > 3:
            return [nodes.Text("…")]
        if schema is False:
            return [nodes.Text("never")]
        if not isinstance(schema, dict) or not schema:
            return [nodes.Text("any")]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return [self._ref(ref)]
        out: list[nodes.Node] = []
        for key, sep in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            parts = as_list(schema.get(key))
            if parts:
                out.append(nodes.Text(f"{key}("))
                for i, part in enumerate(parts[:_MAX_LIST]):
                    if i:
                        out.append(nodes.Text(sep))
                    out.extend(self.summary(part, depth + 1))
                if len(parts) > _MAX_LIST:
                    out.append(nodes.Text(sep + "…"))
                out.append(nodes.Text(")"))
                return out
        raw_types = schema.get("type")
        types = [raw_types] if isinstance(raw_types, str) else [t for t in as_list(raw_types) if isinstance(t, str)]
        if not types:
            if "properties" in schema or "additionalProperties" in schema:
                types = ["object"]
            elif "items" in schema:
                types = ["array"]
        if schema.get("nullable") is True and "null" not in types:
            types.append("null")
        for i, kind in enumerate(types or ["any"]):
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
                if isinstance(schema.get("format"), str):
                    out.append(nodes.Text(f" ({display_text(schema['format'])})"))
        enum = as_list(schema.get("enum"))
        if enum:
            values = ", ".join(display_text(v) for v in enum[:_MAX_LIST]) + (", …" if len(enum) > _MAX_LIST else "")
            out.append(nodes.Text(", one of "))
            out.append(nodes.literal(values, values))
        elif "const" in schema:
            out.append(nodes.Text(" = "))
            out.append(nodes.literal(display_text(schema["const"]), display_text(schema["const"])))
        return out

    def _flags(self, schema: Any) -> str:
        schema = as_dict(schema)
        flags = [f for f in ("readOnly", "writeOnly", "deprecated") if schema.get(f) is True]
        return f" ({', '.join(flags)})" if flags else ""

    def _schema_block(self, name: str, schema: Any) -> nodes.container:
        block = nodes.container(ids=[self.schema_ids[name]], classes=["docgen-schema"])
        block += nodes.rubric(name, name, classes=["docgen-schema-name"])
        schema = as_dict(schema)
        block += paragraphs(schema.get("description"))
        properties = as_dict(schema.get("properties"))
        if not properties or any(k in schema for k in ("oneOf", "anyOf", "allOf", "$ref")):
            para = nodes.paragraph("", "Type: ", classes=["docgen-schema-type"])
            para.extend(self.summary(schema))
            block += para
        if properties:
            required = {r for r in as_list(schema.get("required")) if isinstance(r, str)}
            rows = []
            for prop, prop_schema in properties.items():
                type_cell = self.summary(prop_schema)
                flags = self._flags(prop_schema)
                if flags:
                    type_cell.append(nodes.Text(flags))
                rows.append(
                    [
                        [nodes.literal(display_text(prop), display_text(prop))],
                        type_cell,
                        [nodes.Text("yes" if prop in required else "no")],
                        paragraphs(as_dict(prop_schema).get("description")),
                    ]
                )
            block += make_table(["Property", "Type", "Required", "Description"], rows, "docgen-properties")
        return block

    # -- operations --------------------------------------------------------------------------------------------

    def _resolve(self, value: Any, kind: str) -> dict[str, Any]:
        """Follow local ``#/components/{kind}/X`` references (a few levels; cycles stop)."""
        for _ in range(5):
            value = as_dict(value)
            ref = value.get("$ref")
            if not isinstance(ref, str) or not ref.startswith(f"#/components/{kind}/"):
                return value
            value = as_dict(self.components.get(kind)).get(ref.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~"))
        return as_dict(value)

    def _content(self, content: Any) -> list[nodes.paragraph]:
        """One ``media/type: schema`` paragraph per media type of a request or response body."""
        out: list[nodes.paragraph] = []
        for media, media_obj in as_dict(content).items():
            line = nodes.paragraph(classes=["docgen-media"])
            line += nodes.literal(display_text(media), display_text(media))
            line += nodes.Text(": ")
            line.extend(self.summary(as_dict(media_obj).get("schema")))
            out.append(line)
        return out

    def _parameters(self, path_item: dict[str, Any], operation: dict[str, Any]) -> list[nodes.Node]:
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
            if param.get("deprecated") is True:
                type_cell.append(nodes.Text(" (deprecated)"))
            rows.append(
                [
                    [nodes.literal(name, name)],
                    [nodes.Text(where)],
                    [nodes.Text("yes" if param.get("required") is True else "no")],
                    type_cell,
                    paragraphs(param.get("description")),
                ]
            )
        return [
            nodes.rubric("Parameters", "Parameters"),
            make_table(["Name", "In", "Required", "Type", "Description"], rows, "docgen-parameters"),
        ]

    def _request_body(self, operation: dict[str, Any]) -> list[nodes.Node]:
        body = self._resolve(operation.get("requestBody"), "requestBodies")
        if not body:
            return []
        label = "Request body (required)" if body.get("required") is True else "Request body"
        out: list[nodes.Node] = [nodes.rubric(label, label)]
        out += paragraphs(body.get("description"))
        out += self._content(body.get("content"))
        return out

    def _responses(self, operation: dict[str, Any]) -> list[nodes.Node]:
        rows = []
        for status, raw in as_dict(operation.get("responses")).items():
            response = self._resolve(raw, "responses")
            rows.append(
                [
                    [nodes.literal(display_text(status), display_text(status))],
                    paragraphs(response.get("description")),
                    self._content(response.get("content")),
                ]
            )
        if not rows:
            return []
        return [
            nodes.rubric("Responses", "Responses"),
            make_table(["Status", "Description", "Content"], rows, "docgen-responses"),
        ]

    def _operation(self, path: str, method: str, path_item: dict[str, Any], op: dict[str, Any]) -> nodes.section:
        op_id = op.get("operationId")
        anchor = self.ids.new(f"op-{op_id}" if isinstance(op_id, str) and op_id else f"op-{method}-{path}")
        deprecated = op.get("deprecated") is True
        section = nodes.section(
            ids=[anchor], classes=["docgen-operation"] + (["docgen-deprecated"] if deprecated else [])
        )
        title = nodes.title()
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
        section += paragraphs(op.get("description"))
        section += self._parameters(path_item, op)
        section += self._request_body(op)
        section += self._responses(op)
        return section

    # -- the page ----------------------------------------------------------------------------------------------

    def render(self) -> list[nodes.Node]:
        """Sections per tag with their operations, then the schemas."""
        spec = self.spec
        out: list[nodes.Node] = []
        info = as_dict(spec.get("info"))
        out += paragraphs(info.get("description"), classes=["docgen-api-description"])

        tag_docs: dict[str, Any] = {}
        for tag in as_list(spec.get("tags")):
            tag = as_dict(tag)
            if isinstance(tag.get("name"), str):
                tag_docs.setdefault(tag["name"], tag.get("description"))
        groups: dict[str, list[tuple[str, str, dict[str, Any], dict[str, Any]]]] = {t: [] for t in tag_docs}
        untagged: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        for path, path_item in as_dict(spec.get("paths")).items():
            path_item = as_dict(path_item)
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
            section += paragraphs(tag_docs.get(tag))
            section.extend(self._operation(*entry) for entry in ops)
            out.append(section)
        if untagged:
            section = nodes.section(ids=[self.ids.new("tag-other")], classes=["docgen-tag"])
            section += nodes.title("Operations", "Operations")
            section.extend(self._operation(*entry) for entry in untagged)
            out.append(section)
        if not groups and not untagged:
            out.append(nodes.paragraph("This API has no operations.", "This API has no operations."))

        if self.schemas:
            section = nodes.section(ids=[self.ids.new("schemas")], classes=["docgen-schemas"])
            section += nodes.title("Schemas", "Schemas")
            section.extend(self._schema_block(name, schema) for name, schema in self.schemas.items())
            out.append(section)
        return out
