"""Keeps the original fastapi-error-code import path ``fastapi_error_codes.domain`` working."""

from fastapi_error_codes.domains import ErrorDomain

__all__ = ["ErrorDomain"]
