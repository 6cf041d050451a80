# syntax=docker/dockerfile:1
# One image layout for every shop deployable, built from the uv workspace at the repo root:
#
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=payments -t shop-payments .
#
# SERVICE names a member under services/ (gateway, fulfilment, payments, inventory, email);
# the image holds that member, libs/shared and their locked dependencies, nothing else, and
# runs `python -m shop.<SERVICE>`. The dev-only tools (Stripe emulator, SMTP sink) are built
# from this same file with MEMBER=dev, PACKAGE=shop-devstack and their own MODULE (see
# deploy/compose.yaml); they are never part of the production manifests.
#
# A build that must trust an extra CA (an intercepting proxy) passes its bundle as the secret
# `ca-certificates`; without it, the base image's own roots are used.

FROM docker.io/library/python:3.11-slim-bookworm AS build
ARG SERVICE
ARG MEMBER=services/${SERVICE}
ARG PACKAGE=shop-${SERVICE}
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca-certificates,target=/etc/ssl/certs/ca-certificates.crt \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==${UV_VERSION}"
WORKDIR /src
# The locked dependencies first, in a layer of their own (kept while uv.lock is unchanged)...
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca-certificates,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE}"
# ...then the code: this member and libs/shared, installed as wheels (not editable), so the
# venv alone is the application.
COPY libs/shared libs/shared
COPY ${MEMBER} ${MEMBER}
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca-certificates,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --frozen --no-dev --no-editable --package "${PACKAGE}"

# The runtime: the base image and the venv; no uv, pip cache, sources or build tools.
FROM docker.io/library/python:3.11-slim-bookworm AS runtime
ARG SERVICE
ARG MODULE=shop.${SERVICE}
ARG STOP_SIGNAL=SIGTERM
RUN groupadd --gid 10001 shop \
    && useradd --uid 10001 --gid shop --home-dir /app --no-create-home --shell /usr/sbin/nologin shop
COPY --from=build /app/.venv /app/.venv
# `exec`: the service itself is PID 1 and gets the stop signal, no shell stays in between.
RUN printf '#!/bin/sh\nexec /app/.venv/bin/python -m %s "$@"\n' "${MODULE}" > /app/entrypoint \
    && chmod 0755 /app/entrypoint
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
# Services drain in-flight work on SIGTERM and exit within a few seconds.
STOPSIGNAL ${STOP_SIGNAL}
ENTRYPOINT ["/app/entrypoint"]
