"""Keeps the original fastapi-error-code import path ``fastapi_error_codes.base`` working."""

from fastapi_error_codes.errors import BaseAppException

__all__ = ["BaseAppException"]
