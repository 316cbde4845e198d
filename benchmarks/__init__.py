"""Benchmarks of fastapi-error-codes against the tools users would pick instead.

``python -m benchmarks`` runs every row (see ``docs/BENCHMARKS.md``); each row module has a
``run(ctx)`` returning :class:`benchmarks._common.Result` rows.
"""
