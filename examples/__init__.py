"""Runnable examples of fastapi-error-codes (``uvicorn examples.<name>:app``).

Error codes are unique per process (``@register_exception`` refuses a second class with the
same code), and the tests import every example into one process, so each example declares
its own codes:

    app.py             201, 301-303, 460, 520   (the main example service: ``make run``)
    fleet.py           (reuses app.py's errors)
    with_metrics.py    310-311
    with_prometheus.py 250, 530
    with_dashboard.py  320, 480
    with_sentry.py     340-341

Codes 400-451 and 500-511 are left alone: the built-in framework errors (unknown route,
validation, unexpected exception) use the HTTP status as their code.
"""
