# syntax=docker/dockerfile:1.7
# The function's production image: `python -m eventfn` (uvicorn, one worker) on $PORT.
# Build: docker build -t ghcr.io/example/knative-python-backend:0.1.0 .

# uv, pinned to the version the Makefile bootstraps, copied in as a single static binary.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: dependencies from the lock into /app/.venv, sources compiled to bytecode ----------
FROM python:3.12.12-slim AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Only the lock and the project metadata reach this layer: it stays cached until they change.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.12
COPY eventfn/ eventfn/
COPY handler/ handler/
COPY schemas/ schemas/
RUN python -m compileall -q eventfn handler schemas

# ---- runtime: the venv and the sources, no uv, no caches, no build tools, not root ------------
FROM python:3.12.12-slim AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/eventfn /app/eventfn
COPY --from=build /app/handler /app/handler
COPY --from=build /app/schemas /app/schemas
# Embedded SQLite stores (used when REDIS_URL is unset) write under DATA_DIR=data.
RUN install -d -o app -g app /app/data
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    PORT=8080
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080
# Exec form: Python is PID 1 and receives SIGTERM itself (graceful drain). PORT needs no shell
# expansion: the app reads it from the environment (Settings.port), as Knative sets it.
CMD ["python", "-m", "eventfn"]
