"""Built-in declared codes for framework errors: the error code is the HTTP status."""

from __future__ import annotations

from types import MappingProxyType

from fastapi_error_codes.domains import get_domain_for_code
from fastapi_error_codes.errors import ErrorInfo

__all__ = ["BUILTIN_ERRORS", "VALIDATION_STATUS", "builtin_error"]

VALIDATION_STATUS = 422
INTERNAL_STATUS = 500

# Names and messages are fixed here (not taken from http.HTTPStatus) so they never change
# with the Python version: error names are part of the contract with dashboards and clients.
_TABLE: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request"),
    401: ("Unauthorized", "Authentication is required"),
    402: ("PaymentRequired", "Payment required"),
    403: ("Forbidden", "You are not allowed to do this"),
    404: ("NotFound", "Resource not found"),
    405: ("MethodNotAllowed", "Method not allowed"),
    406: ("NotAcceptable", "Not acceptable"),
    407: ("ProxyAuthenticationRequired", "Proxy authentication required"),
    408: ("RequestTimeout", "Request timeout"),
    409: ("Conflict", "Conflict with the current state of the resource"),
    410: ("Gone", "Resource is gone"),
    411: ("LengthRequired", "Length required"),
    412: ("PreconditionFailed", "Precondition failed"),
    413: ("ContentTooLarge", "Request content too large"),
    414: ("URITooLong", "URI too long"),
    415: ("UnsupportedMediaType", "Unsupported media type"),
    416: ("RangeNotSatisfiable", "Range not satisfiable"),
    417: ("ExpectationFailed", "Expectation failed"),
    418: ("ImATeapot", "I'm a teapot"),
    421: ("MisdirectedRequest", "Misdirected request"),
    422: ("ValidationError", "Request validation failed"),
    423: ("Locked", "Resource is locked"),
    424: ("FailedDependency", "Failed dependency"),
    425: ("TooEarly", "Too early"),
    426: ("UpgradeRequired", "Upgrade required"),
    428: ("PreconditionRequired", "Precondition required"),
    429: ("TooManyRequests", "Too many requests"),
    431: ("RequestHeaderFieldsTooLarge", "Request header fields too large"),
    451: ("UnavailableForLegalReasons", "Unavailable for legal reasons"),
    500: ("InternalServerError", "Internal server error"),
    501: ("NotImplemented", "Not implemented"),
    502: ("BadGateway", "Bad gateway"),
    503: ("ServiceUnavailable", "Service unavailable"),
    504: ("GatewayTimeout", "Gateway timeout"),
    505: ("HTTPVersionNotSupported", "HTTP version not supported"),
    506: ("VariantAlsoNegotiates", "Variant also negotiates"),
    507: ("InsufficientStorage", "Insufficient storage"),
    508: ("LoopDetected", "Loop detected"),
    510: ("NotExtended", "Not extended"),
    511: ("NetworkAuthenticationRequired", "Network authentication required"),
}


def _info(status: int, name: str, message: str) -> ErrorInfo:
    domain = get_domain_for_code(status)
    return ErrorInfo(
        error_code=status,
        error_name=name,
        status_code=status,
        message=message,
        message_key=f"errors.{status}",
        domain=domain.name if domain is not None else None,
        builtin=True,
    )


#: Every built-in framework error, keyed by HTTP status (= its error code).
BUILTIN_ERRORS = MappingProxyType(
    {status: _info(status, name, message) for status, (name, message) in _TABLE.items()}
)


def builtin_error(status: int) -> ErrorInfo:
    """Return the built-in error for an HTTP status; unknown statuses get ``HTTPError``."""
    found = BUILTIN_ERRORS.get(status)
    if found is not None:
        return found
    fallback = INTERNAL_STATUS if status >= 500 else 400
    return _info(status, "HTTPError", BUILTIN_ERRORS[fallback].message)
