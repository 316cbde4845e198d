"""Declared errors with stable codes and one error body for every error of a FastAPI app.

Metrics and monitoring live in :mod:`fastapi_error_codes.metrics`. Their main names can also be
imported from here, as in the original fastapi-error-code (``from fastapi_error_codes import
MetricsConfig``): they load on first use, so the error core alone never imports the monitoring
part or its extras.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi_error_codes._builtin import BUILTIN_ERRORS
from fastapi_error_codes.config import RESPONSE_FORMATS, ErrorHandlerConfig
from fastapi_error_codes.domains import (
    ErrorDomain,
    get_domain,
    get_domain_for_code,
    is_valid_code,
    list_domains,
    register_domain,
)
from fastapi_error_codes.errors import BaseAppException
from fastapi_error_codes.handlers import setup_exception_handler
from fastapi_error_codes.i18n import MessageProvider, negotiate_locale, parse_accept_language
from fastapi_error_codes.models import (
    ErrorCodeFieldError,
    ErrorCodeProblem,
    ErrorDetail,
    ErrorDetailItem,
    ErrorResponse,
    ValidationErrorResponse,
)
from fastapi_error_codes.openapi import (
    CatalogEntry,
    ErrorCatalog,
    error_catalog,
    error_responses,
)
from fastapi_error_codes.registry import (
    ErrorInfo,
    ErrorRegistry,
    ExceptionRegistry,
    _registry,
    default_registry,
    get_error_code_info,
    list_error_codes,
    register_error_code,
    register_exception,
)

__version__ = "0.1.0"

# A library's loggers get a NullHandler, never the last-resort handler: the app's logging
# configuration decides where the lines go (see the logging HOWTO's library advice).
logging.getLogger("fastapi_error_codes").addHandler(logging.NullHandler())

__all__ = [
    "BUILTIN_ERRORS",
    "MONITORING_NAMES",
    "RESPONSE_FORMATS",
    "BaseAppException",
    "CatalogEntry",
    "ErrorCatalog",
    "ErrorCodeFieldError",
    "ErrorCodeProblem",
    "ErrorDetail",
    "ErrorDetailItem",
    "ErrorDomain",
    "ErrorHandlerConfig",
    "ErrorInfo",
    "ErrorRegistry",
    "ErrorResponse",
    "ExceptionRegistry",
    "MessageProvider",
    "ValidationErrorResponse",
    "__version__",
    "_registry",
    "default_registry",
    "error_catalog",
    "error_responses",
    "get_domain",
    "get_domain_for_code",
    "get_error_code_info",
    "is_valid_code",
    "list_domains",
    "list_error_codes",
    "negotiate_locale",
    "parse_accept_language",
    "register_domain",
    "register_error_code",
    "register_exception",
    "setup_exception_handler",
]

#: Monitoring names importable from the package itself; loaded from ``metrics`` on first use.
MONITORING_NAMES: tuple[str, ...] = (
    "DashboardAPI",
    "ErrorMetricsCollector",
    "MetricsConfig",
    "MetricsPreset",
    "PrometheusExporter",
    "SentryIntegration",
    "get_config_from_env",
    "mask_pii",
    "setup_metrics",
)

if TYPE_CHECKING:  # the names __getattr__ loads, for type checkers
    from fastapi_error_codes.metrics import (  # noqa: F401
        DashboardAPI,
        ErrorMetricsCollector,
        MetricsConfig,
        MetricsPreset,
        PrometheusExporter,
        SentryIntegration,
        get_config_from_env,
        mask_pii,
        setup_metrics,
    )


def __getattr__(name: str) -> Any:
    """Load a monitoring name from :mod:`fastapi_error_codes.metrics` on first use."""
    if name in MONITORING_NAMES:
        from fastapi_error_codes import metrics

        value = getattr(metrics, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The package's names, the lazily loaded monitoring names included."""
    return sorted({*globals(), *MONITORING_NAMES})
