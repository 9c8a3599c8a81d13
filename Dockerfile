# AlphaPulse pipeline image. Multi-stage: the build stage makes the virtualenv and warms the
# Numba cache (the kernels compile once here, not at every start); the runtime stage carries the
# virtualenv, the sources and the cache. Docker cannot run on the development machine: this file
# is checked by hadolint in the tests, not built there (docs/operations.md).
#
#   docker build -t alphapulse .
#   docker run --rm --shm-size=1g -p 127.0.0.1:5006:5006 -p 127.0.0.1:9464:9464 alphapulse
#
# --shm-size: the rings live in /dev/shm (the sum of [rings.*] capacity plus a few MiB).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 NUMBA_CACHE_DIR=/opt/numba-cache
WORKDIR /opt/alphapulse
RUN python -m venv /opt/alphapulse/.venv
COPY pyproject.toml README.md ./
COPY alphapulse ./alphapulse
RUN /opt/alphapulse/.venv/bin/pip install --no-cache-dir . \
    && /opt/alphapulse/.venv/bin/python -m alphapulse.warmup

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/opt/numba-cache \
    ALPHAPULSE__OPS__HOST=0.0.0.0 ALPHAPULSE__DASHBOARD__HOST=0.0.0.0 \
    ALPHAPULSE__LOGGING__FORMAT=json
RUN groupadd --system --gid 10001 alphapulse \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/alphapulse alphapulse \
    && mkdir -p /var/lib/alphapulse && chown 10001:10001 /var/lib/alphapulse
WORKDIR /opt/alphapulse
COPY --from=build /opt/alphapulse/.venv /opt/alphapulse/.venv
# the package is installed in the virtualenv; the cache's index names its files by path and mtime,
# which COPY --from keeps
COPY --from=build --chown=10001:10001 /opt/numba-cache /opt/numba-cache
USER 10001:10001
EXPOSE 5006 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["/opt/alphapulse/.venv/bin/python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["/opt/alphapulse/.venv/bin/python", "-m", "alphapulse.apps.pipeline"]
