# The example service (examples/app.py) under gunicorn with uvicorn workers.
#   docker build -t fastapi-error-codes-example .
#   docker compose up          # with Redis, Prometheus and Grafana
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The library with its monitoring extras, and the servers. README.md is the package's
# long description, so the build needs it.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[monitoring]" "gunicorn>=22" "uvicorn-worker>=0.2" "uvicorn>=0.29"

COPY examples ./examples
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py

RUN useradd --create-home --uid 10001 app
USER app

EXPOSE 8000
# Exec form: gunicorn is PID 1 and gets SIGTERM itself, so every worker runs its lifespan
# shutdown (the final metrics flush) before the container stops.
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "examples.app:app"]
