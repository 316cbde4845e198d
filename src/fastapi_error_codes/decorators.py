"""Keeps the original fastapi-error-code import path ``fastapi_error_codes.decorators`` working."""

from fastapi_error_codes.registry import register_exception

__all__ = ["register_exception"]
