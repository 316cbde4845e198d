"""Pydantic models of the error bodies: what the handlers send and the OpenAPI schema shows.

:class:`ErrorResponse` is the default (``"json"``) body and :class:`ErrorCodeProblem` the
RFC 9457 one, with :class:`ErrorCodeFieldError` for each validation field error; the body
builder renders every response through them and the OpenAPI components are their schemas.
:class:`ErrorDetail`, :class:`ErrorDetailItem` and :class:`ValidationErrorResponse` keep the
original fastapi-error-code models for code that builds its own responses.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from fastapi_error_codes._time import utc_timestamp

__all__ = [
    "ErrorCodeFieldError",
    "ErrorCodeProblem",
    "ErrorDetail",
    "ErrorDetailItem",
    "ErrorResponse",
    "ValidationErrorResponse",
]

# errors.MIN_ERROR_CODE/MAX_ERROR_CODE: errors renders its bodies through this module, so
# this module cannot import errors (nor recognise BaseAppException by class: see _AppError).
_MIN_CODE = 0
_MAX_CODE = 9999
_TIMESTAMP_SCHEMA: JsonDict = {"format": "date-time"}
_URI_SCHEMA: JsonDict = {"format": "uri-reference"}


@runtime_checkable
class _AppError(Protocol):
    """What ``from_exception`` reads of an application error (``BaseAppException`` has it)."""

    @property
    def error_code(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def status_code(self) -> int: ...
    @property
    def detail(self) -> Any: ...
    @property
    def timestamp(self) -> str: ...
    @property
    def error_name(self) -> str: ...


def _no_default(schema: JsonDict) -> None:
    # A member left out of the body has no value at all: not a default of null.
    schema.pop("default", None)


class ErrorDetail(BaseModel):
    """One field's error: the field, a message and an optional machine-readable code."""

    field: str = Field(description="Name of the field in error")
    message: str = Field(description="What is wrong with the field")
    code: str | None = Field(default=None, description="Machine-readable code of the error")


class ErrorDetailItem(BaseModel):
    """One pydantic-style validation error: location path, message and error type."""

    loc: list[Any] = Field(description='Path to the value, e.g. ["body", "users", 0, "email"]')
    msg: str = Field(description="What is wrong with the value")
    type: str | None = Field(default=None, description="Type of the error, e.g. missing")


class ErrorResponse(BaseModel):
    """The default error body: code, message, HTTP status, detail, timestamp and name."""

    model_config = ConfigDict(
        extra="forbid",
        title="ErrorCodeResponse",
        # The body always carries all six keys: say so in the response (serialization) schema.
        json_schema_serialization_defaults_required=True,
    )

    error_code: int = Field(ge=_MIN_CODE, le=_MAX_CODE, description="Error code")
    message: str = Field(description="Human-readable message, localised when a locale matches")
    status_code: int | None = Field(default=None, description="HTTP status of the response")
    detail: Any = Field(
        default=None, description="Any JSON value; validation errors: {errors: [...]}"
    )
    timestamp: str = Field(
        default_factory=utc_timestamp,
        description="UTC, ISO 8601",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )
    error_name: str | None = Field(default=None, description="Name of the error")

    @classmethod
    def from_exception(cls, exception: BaseException) -> ErrorResponse:
        """The body of *exception*: its own fields for an app error, else a 500 with its text.

        Any exception with ``error_code``, ``message``, ``status_code``, ``detail``,
        ``timestamp`` and ``error_name`` (a ``BaseAppException``) gives those, unlocalised.
        """
        if isinstance(exception, _AppError):
            return cls(
                error_code=exception.error_code,
                message=exception.message,
                status_code=exception.status_code,
                detail=exception.detail,
                timestamp=exception.timestamp,
                error_name=exception.error_name,
            )
        return cls(
            error_code=500,
            message=str(exception),
            status_code=500,
            error_name=type(exception).__name__,
        )


class ValidationErrorResponse(BaseModel):
    """An error response listing several field errors (status 422 unless given)."""

    error_code: int = Field(ge=_MIN_CODE, le=_MAX_CODE, description="Error code")
    message: str = Field(description="Message about the errors as a whole")
    errors: list[ErrorDetail] = Field(default_factory=list, description="One per field error")
    status_code: int | None = Field(default=422, description="HTTP status of the response")
    timestamp: str = Field(
        default_factory=utc_timestamp,
        description="UTC, ISO 8601",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )

    @classmethod
    def from_validation_details(
        cls,
        error_code: int,
        message: str,
        details: list[dict[str, Any]],
        status_code: int | None = 422,
    ) -> ValidationErrorResponse:
        """Build the response from field error dicts (``field``, ``message``, ``code``)."""
        return cls(
            error_code=error_code,
            message=message,
            errors=[ErrorDetail.model_validate(item) for item in details],
            status_code=status_code,
        )


class ErrorCodeFieldError(BaseModel):
    """One validation field error of a body: where it is, what is wrong, and its type."""

    location: list[str | int] = Field(description="Path to the value: body, query, ... then keys")
    pointer: str = Field(description="RFC 6901 JSON pointer")
    message: str = Field(description="What is wrong with the value")
    type: str = Field(description="Type of the error, e.g. missing")


class ErrorCodeProblem(BaseModel):
    """RFC 9457 problem details with error code extensions.

    ``instance``, ``errors`` and ``context`` are members only when set: :meth:`to_body`
    leaves them out when they are None.
    """

    type: str = Field(description="URI of the problem type", json_schema_extra=_URI_SCHEMA)
    title: str = Field(description="Message of the error code")
    status: int = Field(ge=400, le=599, description="HTTP status of the response")
    detail: str = Field(description="Text about this occurrence")
    instance: Annotated[str, Field(json_schema_extra=_URI_SCHEMA)] | SkipJsonSchema[None] = Field(
        default=None,
        description="Path of the request (absent when unknown)",
        json_schema_extra=_no_default,
    )
    error_code: int = Field(ge=_MIN_CODE, le=_MAX_CODE, description="Error code")
    error_name: str = Field(description="Name of the error")
    timestamp: str = Field(
        default_factory=utc_timestamp,
        description="UTC, ISO 8601",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )
    errors: list[ErrorCodeFieldError] | SkipJsonSchema[None] = Field(
        default=None,
        description="Validation field errors (only on validation errors)",
        json_schema_extra=_no_default,
    )
    context: Any = Field(
        default=None,
        description="Structured detail of the error, if any",
        json_schema_extra=_no_default,
    )

    def to_body(self) -> dict[str, Any]:
        """The body as JSON data; ``instance``, ``errors`` and ``context`` only when set."""
        body = self.model_dump(mode="json")
        for member in _OPTIONAL_PROBLEM_MEMBERS:
            if body.get(member) is None:
                body.pop(member, None)
        return body


#: Members of a problem body that appear only when they have a value.
_OPTIONAL_PROBLEM_MEMBERS = ("instance", "errors", "context")
