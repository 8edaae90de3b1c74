# syntax=docker/dockerfile:1
# cratewatch service image: the service only (no torch), the bundled model and a demo catalog.
#   docker build -t cratewatch:local .
# tests/test_deploy_docker.py replays this build stage's COPY and RUN steps in a clean venv.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY deploy/docker/install-service.sh /usr/local/bin/install-service
COPY pyproject.toml README* ./
COPY service/ service/
# The demo catalog is procedural (service/demo.py), so the image needs no catalog in the context.
RUN install-service /opt/venv /src \
    && /opt/venv/bin/cratewatch demo-catalog --out /opt/catalog

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it and volumes can be chowned to it.
RUN groupadd --system --gid "${UID}" cratewatch \
    && useradd --system --uid "${UID}" --gid cratewatch --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin cratewatch \
    && mkdir -p /data \
    && chown cratewatch:cratewatch /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/catalog /catalog
COPY models/cratewatch-embedder.onnx models/cratewatch-embedder.json /app/models/
# CRATEWATCH_THREADS is left unset on purpose: the service sizes ONNX Runtime's thread pool from
# the container's CPU limit (cgroup cpu.max) and affinity, not from the host's core count.
# MALLOC_ARENA_MAX=2: glibc's per-thread arenas kept RSS high for good after bursts of large
# uploads (README, Reliability: benchmarks/memory.py); read at process start, so set here.
ENV PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRATEWATCH_HOST=0.0.0.0 \
    CRATEWATCH_PORT=8000 \
    CRATEWATCH_CATALOG=/catalog \
    CRATEWATCH_DATA=/data \
    CRATEWATCH_MODEL=/app/models/cratewatch-embedder.onnx
WORKDIR /app
USER ${UID}:${UID}
EXPOSE 8000
# A named volume mounted at /data starts with the image's (empty, cratewatch-owned) directory.
VOLUME ["/data", "/catalog"]
# python:slim has no curl; the standard library is enough for a liveness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRATEWATCH_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["cratewatch"]
CMD ["serve"]
