"""Declared errors with stable codes and one error body for every error of a FastAPI app.

Metrics and monitoring live in :mod:`fastapi_error_codes.metrics`; nothing here imports them.
"""

from __future__ import annotations

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
from fastapi_error_codes.openapi import (
    CatalogEntry,
    ErrorCatalog,
    error_catalog,
    error_responses,
)
from fastapi_error_codes.registry import (
    ErrorInfo,
    ErrorRegistry,
    default_registry,
    register_exception,
)

__version__ = "0.1.0"

__all__ = [
    "BUILTIN_ERRORS",
    "RESPONSE_FORMATS",
    "BaseAppException",
    "CatalogEntry",
    "ErrorCatalog",
    "ErrorDomain",
    "ErrorHandlerConfig",
    "ErrorInfo",
    "ErrorRegistry",
    "MessageProvider",
    "__version__",
    "default_registry",
    "error_catalog",
    "error_responses",
    "get_domain",
    "get_domain_for_code",
    "is_valid_code",
    "list_domains",
    "negotiate_locale",
    "parse_accept_language",
    "register_domain",
    "register_exception",
    "setup_exception_handler",
]
