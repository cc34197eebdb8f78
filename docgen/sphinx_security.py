"""Security as docutils nodes: an operation's requirements, and the service's security schemes.

A requirement list is shown as alternatives ("or") of scheme sets ("and"), each scheme with the scopes it
needs and a link to its description in the "Security schemes" section; an empty list says the operation needs
no authorization. A scheme shows its type, where its key goes (apiKey), its HTTP scheme and bearer format, its
OAuth 2 flows with their URLs and scopes, its OpenID Connect URL, and its description (CommonMark).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docutils import nodes

from docgen.sphinx_blocks import as_dict, as_list, display_text, make_table, markdown, safe_url

__all__ = ["MAX_SCOPES", "requirement_nodes", "scheme_block"]

MAX_SCOPES = 100  # scopes listed per flow
MAX_REQUIREMENTS = 20  # alternatives listed per operation
_TYPE_NAMES = {
    "apiKey": "API key",
    "http": "HTTP authentication",
    "oauth2": "OAuth 2.0",
    "openIdConnect": "OpenID Connect",
    "mutualTLS": "Mutual TLS",
}
_FLOW_NAMES = {
    "implicit": "Implicit",
    "password": "Password",
    "clientCredentials": "Client credentials",
    "authorizationCode": "Authorization code",
}


def _url(value: Any) -> nodes.Node:
    """A URL as a link when it is http(s), else as text."""
    text = display_text(value)
    if text and safe_url(text) and text.lower().startswith(("http://", "https://")):
        return nodes.reference(text, text, refuri=text)
    return nodes.literal(text, text)


def requirement_nodes(
    security: Any, scheme_link: Callable[[str], nodes.Node], *, inherited: bool = False
) -> list[nodes.Node]:
    """One ``Authorization:`` paragraph for a security requirement list (nothing when there is no list)."""
    if not isinstance(security, list):
        return []
    para = nodes.paragraph(classes=["docgen-security"])
    para += nodes.strong("Authorization:", "Authorization:")
    para += nodes.Text(" ")
    requirements = [as_dict(r) for r in security[:MAX_REQUIREMENTS]]
    if not requirements:
        para += nodes.Text("none (this operation is public)")
        return [para]
    for i, requirement in enumerate(requirements):
        if i:
            para += nodes.Text(" or ")
        if not requirement:
            para += nodes.Text("none")
            continue
        if len(requirement) > 1 and len(requirements) > 1:
            para += nodes.Text("(")
        for j, (name, scopes) in enumerate(requirement.items()):
            if j:
                para += nodes.Text(" and ")
            para += scheme_link(str(name))
            scopes = [display_text(s) for s in as_list(scopes)]
            if scopes:
                para += nodes.Text(" with scope" + ("s " if len(scopes) > 1 else " "))
                for k, scope in enumerate(scopes[:MAX_SCOPES]):
                    if k:
                        para += nodes.Text(", ")
                    para += nodes.literal(scope, scope)
        if len(requirement) > 1 and len(requirements) > 1:
            para += nodes.Text(")")
    if len(security) > MAX_REQUIREMENTS:
        para += nodes.Text(" or …")
    if inherited:
        para += nodes.Text(" (the API's default)")
    return [para]


def scheme_block(name: str, scheme: Any, anchor: str) -> nodes.container:
    """One security scheme: its name, type and settings, OAuth 2 flows and scopes, description."""
    scheme = as_dict(scheme)
    block = nodes.container(ids=[anchor], classes=["docgen-security-scheme"])
    block += nodes.rubric(name, name, classes=["docgen-schema-name"])
    kind = display_text(scheme.get("type"))
    rows: list[list[list[nodes.Node]]] = [
        [[nodes.Text("Type")], [nodes.Text(_TYPE_NAMES.get(kind, kind) or "unknown")]]
    ]
    if kind == "apiKey":
        where = display_text(scheme.get("in"))
        key = display_text(scheme.get("name"))
        rows.append([[nodes.Text(f"{where.capitalize() or 'Key'} name")], [nodes.literal(key, key)]])
    if kind == "http":
        scheme_name = display_text(scheme.get("scheme"))
        rows.append([[nodes.Text("HTTP scheme")], [nodes.literal(scheme_name, scheme_name)]])
        if scheme.get("bearerFormat") is not None:
            fmt = display_text(scheme.get("bearerFormat"))
            rows.append([[nodes.Text("Bearer format")], [nodes.literal(fmt, fmt)]])
    if kind == "openIdConnect" and scheme.get("openIdConnectUrl") is not None:
        rows.append([[nodes.Text("OpenID Connect URL")], [_url(scheme.get("openIdConnectUrl"))]])
    for flow_name, flow in as_dict(scheme.get("flows")).items():
        flow = as_dict(flow)
        cell: list[nodes.Node] = []
        for key, label in (
            ("authorizationUrl", "Authorization URL"),
            ("tokenUrl", "Token URL"),
            ("refreshUrl", "Refresh URL"),
        ):
            if flow.get(key) is not None:
                cell.append(nodes.paragraph("", "", nodes.Text(f"{label}: "), _url(flow[key])))
        scopes = as_dict(flow.get("scopes"))
        if scopes:
            listing = nodes.bullet_list(classes=["docgen-scopes"])
            for scope, description in list(scopes.items())[:MAX_SCOPES]:
                item = nodes.paragraph("", "", nodes.literal(display_text(scope), display_text(scope)))
                text = display_text(description).strip()
                if text:
                    item += nodes.Text(f" — {text}")
                listing += nodes.list_item("", item)
            if len(scopes) > MAX_SCOPES:
                more = f"{len(scopes) - MAX_SCOPES} more scopes not shown"
                listing += nodes.list_item("", nodes.paragraph(more, more, classes=["docgen-more"]))
            cell += [nodes.paragraph("Scopes:", "Scopes:"), listing]
        label = _FLOW_NAMES.get(str(flow_name), display_text(flow_name))
        rows.append([[nodes.Text(f"{label} flow")], cell or [nodes.Text("—")]])
    block += make_table(["Setting", "Value"], rows, "docgen-security-table")
    block += markdown(scheme.get("description"))
    return block
