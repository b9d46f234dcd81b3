"""The OpenAPI document says what the API enforces, so generated clients and property-based tests work.

FastAPI's document is completed here, once per app (the taxonomy and checklist are this server's):

- every operation lists the errors it can answer: 401 (an API key is configured and missing or wrong),
  413 (any request body over ``serve.max_upload_bytes``), 404 for an unknown id in the path, 503 (the
  database does not answer);
- an uploaded file is not empty; optional form fields are left out rather than sent as null;
- the sort keys and time zones the handlers accept (400 otherwise);
- a correction's body names the taxonomy's categories and sub-categories and the checklist's items as
  enums, and its rules as schema: a category with sub-categories needs one of its own, one without
  takes none, a sub-category alone implies its category, at least one label, a due time only with a
  promised callback.

tests/test_openapi.py runs schemathesis against this document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import available_timezones

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pipeline.analysis.compliance import Checklist
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.store.queries import SORTABLE

Schema = dict[str, Any]

# Label fields of a correction (``reviewer`` is who, not a label).
CORRECTION_LABELS = (
    "category",
    "subcategory",
    "customer_sentiment",
    "agent_sentiment",
    "callback_promised",
    "callback_due",
    "compliance",
)
UNAUTHORISED = {"description": "API key missing or wrong (only when the server has keys configured)"}
TOO_LARGE = {"description": "The request body is over the server's upload limit"}
STORE_DOWN = {"description": "The database is not answering; try again (Retry-After)"}


def install_openapi(app: FastAPI, taxonomy: Callable[[], Taxonomy], checklist: Callable[[], Checklist]) -> None:
    """Replace ``app.openapi`` with FastAPI's document completed as the module docstring says."""

    def openapi() -> Schema:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document_errors(spec)
            document_query_values(spec)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, body in components.items():
                if name.startswith("Body_upload_") and "file" in body.get("properties", {}):
                    upload_form(body)
            if "CorrectionRequest" in components:
                components["CorrectionRequest"] = correction_schema(
                    components["CorrectionRequest"], taxonomy(), checklist()
                )
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def upload_form(body: Schema) -> None:
    """An upload form as multipart sends it: optional fields are left out, not sent as "null"; the file
    is not empty (an empty one is refused with 400)."""
    for field in body["properties"].values():
        options = field.get("anyOf")
        if options and {"type": "null"} in options:
            (kept,) = [option for option in options if option != {"type": "null"}]
            field.pop("anyOf")
            field.update(kept)
    body["properties"]["file"]["minLength"] = 1


def document_query_values(spec: Schema) -> None:
    """Query values the handlers check themselves (400 otherwise): sort keys and time zones."""
    names = "|".join(sorted(SORTABLE))
    sort_pattern = rf"^[+-]?({names})(,[+-]?({names}))*$"
    zones = sorted(available_timezones())
    for methods in spec.get("paths", {}).values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query" or parameter.get("name") not in ("sort", "timezone"):
                    continue
                schema = parameter.setdefault("schema", {})
                if parameter["name"] == "sort":
                    schema["pattern"] = sort_pattern
                    what = "a sort key the calls cannot be sorted by"
                else:
                    schema["enum"] = zones
                    what = "a time zone that is not an IANA name"
                operation["responses"].setdefault("400", {"description": f"Bad query value: {what}"})


def document_errors(spec: Schema) -> None:
    for path, methods in spec.get("paths", {}).items():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                responses.setdefault("401", UNAUTHORISED)
            if "requestBody" in operation:
                responses.setdefault("413", TOO_LARGE)
            if "{" in path:
                responses.setdefault("404", {"description": "No such " + path.rsplit("{", 1)[1].split("_")[0]})
            responses.setdefault("503", STORE_DOWN)


def correction_schema(generated: Schema, taxonomy: Taxonomy, checklist: Checklist) -> Schema:
    """The CorrectionRequest schema with this server's labels as enums and its rules as schema."""
    subs: dict[str, list[str]] = {name: [] for name in taxonomy.categories}
    for label in taxonomy.labels:
        if label.subcategory:
            subs.setdefault(label.category, []).append(label.subcategory)
    every_sub = sorted({s for names in subs.values() for s in names})
    properties: Schema = dict(generated.get("properties", {}))
    # Null means "unchanged" for most labels in the API; the schema asks for values (stricter, still accepted).
    properties["category"] = {**_described(properties, "category"), "type": "string", "enum": list(subs)}
    properties["subcategory"] = {**_described(properties, "subcategory"), "type": "string", "enum": every_sub}
    for name in ("customer_sentiment", "agent_sentiment"):
        properties[name] = {**_described(properties, name), "type": "string",
                            "enum": ["positive", "neutral", "negative"]}
    properties["callback_promised"] = {**_described(properties, "callback_promised"), "type": "boolean"}
    statuses = ["pass", "fail", "not_applicable"]
    properties["compliance"] = {
        **_described(properties, "compliance"),
        "type": "object",
        "properties": {item.id: {"type": "string", "enum": statuses} for item in checklist.items},
        "additionalProperties": False,
    }
    category_rules: list[Schema] = []
    for category, names in subs.items():
        if names:
            category_rules.append({"required": ["category", "subcategory"], "properties": {
                "category": {"const": category}, "subcategory": {"enum": names}}})
        else:
            category_rules.append({"required": ["category"], "properties": {"category": {"const": category}},
                                   "not": {"required": ["subcategory"]}})
    category_rules.append({"required": ["subcategory"], "not": {"required": ["category"]}})
    category_rules.append({"not": {"anyOf": [{"required": ["category"]}, {"required": ["subcategory"]}]}})
    return {
        **{k: v for k, v in generated.items() if k not in ("properties", "anyOf", "allOf")},
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "allOf": [
            {"anyOf": category_rules},
            {"anyOf": [{"required": [name]} for name in CORRECTION_LABELS]},
            {"not": {"required": ["callback_promised", "callback_due"], "properties": {
                "callback_promised": {"const": False}, "callback_due": {"type": "string"}}}},
        ],
    }


def _described(properties: Schema, name: str) -> Schema:
    found = properties.get(name, {})
    return {k: found[k] for k in ("title", "description") if k in found}
