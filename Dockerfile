# syntax=docker/dockerfile:1
# One image for the four services; the command chooses what runs:
#   python -m orchestrator (the default) | python -m inventory | python -m payment
#   | python -m notification | migrate (every service's `alembic upgrade head`)
# Build with `make image` (docker, or buildah where no Docker engine runs). Settings come from the
# environment exactly as outside a container (see .env.example); HTTP_HOST is 0.0.0.0 here so the
# health, metrics and API port is reachable from outside the container.

# The base is a build argument so a team can put its own (hardened, mirrored) Python 3.11+ image
# in its place; build and runtime stages must use the same one, as the venv links to its python.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked dependencies and the four services, into /app/.venv ---------------------
FROM ${PYTHON_IMAGE} AS build

# The same uv as `make install` (Makefile UV_VERSION), from PyPI: no other registry needed.
ARG UV_VERSION=0.9.30
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

# Compiled bytecode starts the services faster; copy (not hardlink) out of the cache mount; never
# download a Python: the venv must use the base image's interpreter, which the runtime stage has.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_FROZEN=1 \
    UV_NO_DEV=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Third-party dependencies first, from the workspace's manifests only: this layer is rebuilt when
# uv.lock changes, not on every code change.
COPY pyproject.toml uv.lock ./
COPY libs/sagakit/pyproject.toml libs/sagakit/
COPY libs/sagaops/pyproject.toml libs/sagaops/
COPY services/orchestrator/pyproject.toml services/orchestrator/
COPY services/inventory/pyproject.toml services/inventory/
COPY services/payment/pyproject.toml services/payment/
COPY services/notification/pyproject.toml services/notification/
ARG PACKAGES="--package orchestrator --package inventory --package payment --package notification"
# PACKAGES is a list of flags: it must split.
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --no-install-workspace ${PACKAGES}

# Then our own code, installed as wheels (not editable) so the runtime stage needs no sources.
# sagaops (operator tools, matplotlib) stays out of the image.
COPY libs/sagakit libs/sagakit
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --no-editable ${PACKAGES}

# Only what the migrate command reads at run time: each service's alembic.ini and migrations/.
RUN for s in orchestrator inventory payment notification; do \
      mkdir -p "/out/services/$s" && cp -r "services/$s/alembic.ini" "services/$s/migrations" "/out/services/$s/"; \
    done

# --- runtime: the venv, the migrations, a non-root user ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric uid, so Kubernetes can check runAsNonRoot without looking the name up.
RUN groupadd --gid 10001 saga \
    && useradd --uid 10001 --gid saga --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin saga

WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY --from=build /out/services /app/services
COPY --chmod=755 scripts/migrate.sh /app/scripts/migrate.sh
RUN ln -s /app/scripts/migrate.sh /usr/local/bin/migrate

# JSON logs for log collectors; no .pyc writes (the root filesystem may be read-only); logs
# unbuffered so they are not lost on a crash.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    LOG_FORMAT=json

USER 10001:10001
# orchestrator 8000 (order API), inventory 8001, payment 8002, notification 8003: /healthz,
# /readyz, /metrics on each (<SERVICE>_HTTP_PORT changes them).
EXPOSE 8000 8001 8002 8003
# Exec form: python is PID 1 and gets SIGTERM itself (the services stop cleanly on it).
CMD ["python", "-m", "orchestrator"]
