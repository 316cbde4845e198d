"""Error responses per route in the OpenAPI schema, matching the bodies actually sent."""

from __future__ import annotations

import copy
import http
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from fastapi_error_codes._bodies import build_body
from fastapi_error_codes._builtin import VALIDATION_STATUS, builtin_error
from fastapi_error_codes._catalog import CatalogEntry, ErrorCatalog, error_catalog
from fastapi_error_codes.errors import BaseAppException, ErrorInfo
from fastapi_error_codes.models import ErrorCodeFieldError, ErrorCodeProblem, ErrorResponse

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from fastapi_error_codes.config import ErrorHandlerConfig

__all__ = [
    "BODY_SCHEMA_NAME",
    "FIELD_ERROR_SCHEMA_NAME",
    "PROBLEM_SCHEMA_NAME",
    "CatalogEntry",
    "ErrorCatalog",
    "error_catalog",
    "error_responses",
    "install_openapi",
    "patch_openapi_schema",
]

#: Component names of the shared schemas (prefixed to stay clear of the app's own models).
BODY_SCHEMA_NAME = "ErrorCodeResponse"
PROBLEM_SCHEMA_NAME = "ErrorCodeProblem"
FIELD_ERROR_SCHEMA_NAME = "ErrorCodeFieldError"

_REF = "#/components/schemas/"
_OUR_REFS = {_REF + BODY_SCHEMA_NAME, _REF + PROBLEM_SCHEMA_NAME}
_FASTAPI_422_REF = _REF + "HTTPValidationError"
_EXAMPLE_TIMESTAMP = "2025-01-01T12:00:00.000Z"
_EXAMPLE_FIELD_ERRORS = [
    {
        "location": ["body", "email"],
        "pointer": "/body/email",
        "message": "Field required",
        "type": "missing",
    }
]

ErrorSpec = type[BaseAppException] | int


#: The shared components and the models they are the (serialization) schemas of.
_COMPONENT_MODELS: dict[str, type[BaseModel]] = {
    FIELD_ERROR_SCHEMA_NAME: ErrorCodeFieldError,
    BODY_SCHEMA_NAME: ErrorResponse,
    PROBLEM_SCHEMA_NAME: ErrorCodeProblem,
}


def _schemas() -> dict[str, dict[str, Any]]:
    """The shared components, generated from the body models (references between them kept)."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in _COMPONENT_MODELS.items():
        schema = model.model_json_schema(mode="serialization", ref_template=_REF + "{model}")
        nested = schema.pop("$defs", {})
        missing = set(nested) - set(_COMPONENT_MODELS)
        if missing:  # pragma: no cover - a model referring to one that is no component
            raise RuntimeError(f"{name} refers to models without a component: {sorted(missing)}")
        schemas[name] = schema
    _as_sent(schemas[BODY_SCHEMA_NAME])
    return schemas


def _as_sent(body: dict[str, Any]) -> None:
    """Narrow the body schema to what the handlers send.

    ``ErrorResponse`` accepts a missing status and name (the original project's model does), but
    every body the handlers send has an HTTP error status and the error's name.
    """
    members = body["properties"]
    for name, sent in (
        ("status_code", {"type": "integer", "minimum": 400, "maximum": 599}),
        ("error_name", {"type": "string"}),
    ):
        member = members[name]
        for key in ("anyOf", "default", "type"):
            member.pop(key, None)
        member.update(sent)


def _info_of(spec: ErrorSpec) -> ErrorInfo:
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 400 <= spec <= 599:
            raise ValueError(f"error_responses: an int must be an HTTP status 400-599, got {spec}")
        return builtin_error(spec)
    info = getattr(spec, "__error_info__", None)
    if not isinstance(spec, type) or not issubclass(spec, BaseAppException) or info is None:
        raise TypeError(
            "error_responses takes classes declared with @register_exception or HTTP statuses, "
            f"got {spec!r}"
        )
    if spec is not info.exception_class:
        raise TypeError(f"{spec.__name__} is not declared itself (only a parent is)")
    return cast("ErrorInfo", info)


def _example(info: ErrorInfo) -> dict[str, Any]:
    validation = info.status_code == VALIDATION_STATUS
    return build_body(
        "json",
        **info.public_fields(),
        detail=None,
        errors=copy.deepcopy(_EXAMPLE_FIELD_ERRORS) if validation else None,
        timestamp=_EXAMPLE_TIMESTAMP,
        instance=None,
        type_base=None,
    )


def _response(status: int, infos: list[ErrorInfo]) -> dict[str, Any]:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    codes = ", ".join(f"{i.error_code} {i.error_name}" for i in infos)
    examples: dict[str, Any] = {}
    for info in infos:
        key = info.error_name
        if key in examples:
            key = f"{key}_{info.error_code}"
        examples[key] = {
            "summary": f"{info.error_code} {info.error_name}: {info.message}",
            "value": _example(info),
        }
    return {
        "description": f"{phrase}. Error codes: {codes}",
        "content": {
            "application/json": {"schema": {"$ref": _REF + BODY_SCHEMA_NAME}, "examples": examples}
        },
    }


def error_responses(*errors: ErrorSpec) -> dict[int | str, dict[str, Any]]:
    """Return a ``responses=`` mapping documenting *errors* (declared classes or statuses).

    Per HTTP status: the shared error body schema and one named example per error. The body
    format is the app's (``setup_exception_handler`` rewrites these entries to it).
    """
    by_status: dict[int, list[ErrorInfo]] = {}
    for spec in errors:
        info = _info_of(spec)
        group = by_status.setdefault(info.status_code, [])
        if all(i.error_code != info.error_code for i in group):
            group.append(info)
    return {status: _response(status, by_status[status]) for status in sorted(by_status)}


# -- patching the generated schema -------------------------------------------------------------


def _convert_example(value: Any, config: ErrorHandlerConfig) -> Any:
    if config.response_format == "json" or not isinstance(value, Mapping):
        return value
    detail = value.get("detail")
    errors = None
    if isinstance(detail, Mapping) and set(detail) == {"errors"}:
        errors, detail = list(detail["errors"]), None
    return build_body(
        config.response_format,
        error_code=value["error_code"],
        error_name=value["error_name"],
        status_code=value["status_code"],
        message=value["message"],
        detail=detail,
        errors=errors,
        timestamp=value["timestamp"],
        instance="/example",
        type_base=config.problem_type_base,
    )


def _is_ours(response: Mapping[str, Any]) -> bool:
    content = response.get("content")
    if not isinstance(content, Mapping):
        return False
    return any(
        isinstance(media, Mapping) and media.get("schema", {}).get("$ref") in _OUR_REFS
        for media in content.values()
    )


def _is_fastapi_422(response: Mapping[str, Any]) -> bool:
    content = response.get("content")
    if not isinstance(content, Mapping):
        return False
    return any(
        isinstance(media, Mapping) and media.get("schema", {}).get("$ref") == _FASTAPI_422_REF
        for media in content.values()
    )


def _rewrite(response: dict[str, Any], config: ErrorHandlerConfig) -> None:
    examples: dict[str, Any] = {}
    for media in response.get("content", {}).values():
        if isinstance(media, Mapping) and media.get("schema", {}).get("$ref") in _OUR_REFS:
            for name, example in media.get("examples", {}).items():
                examples[name] = {**example, "value": _convert_example(example["value"], config)}
    name = PROBLEM_SCHEMA_NAME if config.response_format == "problem+json" else BODY_SCHEMA_NAME
    response["content"] = {
        config.media_type: {"schema": {"$ref": _REF + name}, "examples": examples}
    }


def patch_openapi_schema(schema: dict[str, Any], config: ErrorHandlerConfig) -> dict[str, Any]:
    """Rewrite error responses of *schema* to *config*'s format and replace FastAPI's 422."""
    validation = config.framework_errors.get(VALIDATION_STATUS)
    info = validation.__error_info__ if validation is not None else None
    ours_422 = _response(VALIDATION_STATUS, [info or builtin_error(VALIDATION_STATUS)])
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, response in list(responses.items()):
                if str(status) == "422" and _is_fastapi_422(response):
                    responses[status] = response = copy.deepcopy(ours_422)
                if _is_ours(response):
                    _rewrite(response, config)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(_schemas())
    text = json.dumps(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        # FastAPI's own 422 models: dropped once no route refers to them any more.
        if f'"{_REF}{name}"' not in text and name in components:
            still_used = f'"{_REF}{name}"' in json.dumps(
                {k: v for k, v in components.items() if k != name}
            )
            if not still_used:
                del components[name]
    return schema


class _OpenAPIWithErrors:
    """Replacement for ``app.openapi`` that patches the generated schema once."""

    def __init__(
        self, app: Any, original: Callable[[], dict[str, Any]], config: ErrorHandlerConfig
    ) -> None:
        self.app = app
        self.original = original
        self.config = config

    def __call__(self) -> dict[str, Any]:
        if self.app.openapi_schema is not None:
            return self.app.openapi_schema  # type: ignore[no-any-return]
        schema = self.original()
        patch_openapi_schema(schema, self.config)
        self.app.openapi_schema = schema
        return schema


def install_openapi(app: Starlette, config: ErrorHandlerConfig) -> None:
    """Make ``app.openapi()`` document error bodies in *config*'s format (FastAPI apps only)."""
    current = getattr(app, "openapi", None)
    if current is None or not hasattr(app, "openapi_schema"):
        return
    if isinstance(current, _OpenAPIWithErrors):
        current.config = config
    else:
        setattr(app, "openapi", _OpenAPIWithErrors(app, current, config))  # noqa: B010
    app.openapi_schema = None
