"""The API reference at ``/docs``: plain HTML generated from the OpenAPI document.

FastAPI's own documentation pages load their scripts and styles from a
CDN; this one is rendered on the server from ``app.openapi()``, styled by the
page's own stylesheet, and runs no script, so reading it contacts no other
origin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEMA_REF_PREFIX = "#/components/schemas/"


def api_reference_html(openapi: Mapping[str, Any]) -> str:
    """The whole reference page for the OpenAPI document ``openapi``."""
    info = _mapping(openapi.get("info"))
    title = str(info.get("title", "API"))
    version = str(info.get("version", ""))
    operations = list(_operations(openapi))
    schemas = _mapping(_mapping(openapi.get("components")).get("schemas"))
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}: API reference</title>",
        '<link rel="stylesheet" href="static/page.css">',
        '<link rel="icon" href="static/icon.png" type="image/png">',
        "</head>",
        '<body class="reference">',
        "<header>",
        f"<h1>{escape(title)} <small>version {escape(version)}</small></h1>",
        _paragraphs(info.get("description")),
        "<p>The same, machine-readable: "
        '<a href="openapi.json">openapi.json</a> (OpenAPI '
        f"{escape(str(openapi.get('openapi', '')))}). "
        '<a href="./">Price a laptop in your browser</a>.</p>',
        "</header>",
        "<main>",
        '<nav aria-labelledby="endpoints-heading">',
        '<h2 id="endpoints-heading">Endpoints</h2>',
        "<ul>",
        *(
            f'<li><a href="#{anchor}"><code>{escape(method.upper())} {escape(path)}</code></a>'
            f"{_summary_suffix(operation)}</li>"
            for method, path, operation, anchor in operations
        ),
        "</ul>",
        "</nav>",
        *(_operation_html(*operation) for operation in operations),
        _schemas_html(schemas),
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(part for part in parts if part)


def _operations(openapi: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any], str]]:
    found = []
    for path, item in _mapping(openapi.get("paths")).items():
        for method in HTTP_METHODS:
            operation = _mapping(_mapping(item).get(method))
            if operation:
                found.append((method, str(path), operation, _anchor("op", method, str(path))))
    return found


def _anchor(*words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")


def _summary_suffix(operation: Mapping[str, Any]) -> str:
    summary = operation.get("summary")
    return f": {escape(str(summary))}" if summary else ""


def _operation_html(method: str, path: str, operation: Mapping[str, Any], anchor: str) -> str:
    parts = [
        f'<section id="{anchor}" aria-labelledby="{anchor}-heading">',
        f'<h2 id="{anchor}-heading"><code>{escape(method.upper())} {escape(path)}</code></h2>',
    ]
    if operation.get("summary"):
        parts.append(f"<p><strong>{escape(str(operation['summary']))}</strong></p>")
    parts.append(_paragraphs(operation.get("description")))
    parameters = _sequence(operation.get("parameters"))
    if parameters:
        parts += [
            "<h3>Parameters</h3>",
            "<table>",
            "<thead><tr><th>name</th><th>in</th><th>required</th><th>type</th>"
            "<th>description</th></tr></thead>",
            "<tbody>",
        ]
        for parameter in map(_mapping, parameters):
            parts.append(
                f"<tr><td><code>{escape(str(parameter.get('name', '')))}</code></td>"
                f"<td>{escape(str(parameter.get('in', '')))}</td>"
                f"<td>{'yes' if parameter.get('required') else 'no'}</td>"
                f"<td>{_type_html(_mapping(parameter.get('schema')))}</td>"
                f"<td>{escape(str(parameter.get('description', '')))}</td></tr>"
            )
        parts += ["</tbody>", "</table>"]
    body = _mapping(operation.get("requestBody"))
    if body:
        required = "required" if body.get("required") else "optional"
        parts += [f"<h3>Request body ({required})</h3>", _paragraphs(body.get("description"))]
        parts.append(_content_html(_mapping(body.get("content"))))
    responses = _mapping(operation.get("responses"))
    if responses:
        parts.append("<h3>Responses</h3>")
        parts += _table(
            ["status", "description", "body"],
            [
                [
                    f"<code>{escape(str(status))}</code>",
                    escape(str(_mapping(response).get("description", ""))),
                    _content_html(_mapping(_mapping(response).get("content"))),
                ]
                for status, response in responses.items()
            ],
        )
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _table(headings: list[str], rows: list[list[str]]) -> list[str]:
    """An HTML table of cells that are already HTML; the headings are plain words."""
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    body = ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows]
    return ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"]


def _content_html(content: Mapping[str, Any]) -> str:
    if not content:
        return ""
    items = [
        f"<li><code>{escape(str(media_type))}</code>: "
        f"{_type_html(_mapping(_mapping(entry).get('schema')))}</li>"
        for media_type, entry in content.items()
    ]
    return "<ul>" + "".join(items) + "</ul>"


def _schemas_html(schemas: Mapping[str, Any]) -> str:
    if not schemas:
        return ""
    parts = ['<section id="schemas" aria-labelledby="schemas-heading">']
    parts.append('<h2 id="schemas-heading">Schemas</h2>')
    for name, schema in schemas.items():
        schema = _mapping(schema)
        anchor = _anchor("schema", str(name))
        parts.append(f'<h3 id="{anchor}">{escape(str(name))}</h3>')
        parts.append(_paragraphs(schema.get("description")))
        properties = _mapping(schema.get("properties"))
        if not properties:
            parts.append(f"<p>{_type_html(schema)}</p>")
            continue
        required = {str(item) for item in _sequence(schema.get("required"))}
        parts += _table(
            ["member", "type", "required", "description"],
            [
                [
                    f"<code>{escape(str(member))}</code>",
                    _type_html(_mapping(member_schema)),
                    "yes" if member in required else "no",
                    escape(str(_mapping(member_schema).get("description", ""))),
                ]
                for member, member_schema in properties.items()
            ],
        )
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _type_html(schema: Mapping[str, Any]) -> str:
    """A schema in a few words: a link for a named schema, "array of ..." for arrays."""
    reference = schema.get("$ref")
    if isinstance(reference, str):
        name = reference.removeprefix(SCHEMA_REF_PREFIX)
        return f'<a href="#{_anchor("schema", name)}">{escape(name)}</a>'
    for combinator, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        options = _sequence(schema.get(combinator))
        if options:
            return joiner.join(_type_html(_mapping(option)) for option in options)
    if "enum" in schema:
        values = ", ".join(escape(repr(value)) for value in _sequence(schema["enum"]))
        return f"one of {values}"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type_html(_mapping(schema.get('items')))}"
    if kind == "object" and "additionalProperties" in schema:
        values = _type_html(_mapping(schema.get("additionalProperties")))
        return f"object of {values}"
    if isinstance(kind, str):
        detail = schema.get("format")
        return escape(f"{kind} ({detail})" if detail else kind)
    return "any"


def _paragraphs(text: object) -> str:
    if not text:
        return ""
    blocks = [block.strip() for block in str(text).split("\n\n") if block.strip()]
    return "\n".join(f"<p>{escape(block)}</p>" for block in blocks)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()
