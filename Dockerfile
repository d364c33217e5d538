# syntax=docker/dockerfile:1
# ldf-server: install into a virtual environment in a build stage, then copy only that
# environment into a slim runtime that runs as a non-root user.
#
#   docker build -t ldf-server .
#   docker run -p 8080:8080 -e LDF_SERVER__BASE_URL=https://data.example.be -v ldf-data:/var/lib/ldf-server ldf-server
#
# Every setting can be given as an environment variable (LDF_<SECTION>__<KEY>, README "Container").
# tests/test_image.py replays this file's install steps; keep it to plain RUN/COPY/ENV lines.

FROM python:3.11-slim AS build
RUN python -m venv /opt/ldf-server
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ldf_server ./ldf_server
COPY vocabularies ./vocabularies
RUN /opt/ldf-server/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && /opt/ldf-server/bin/ldf-server --version

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/ldf-server \
      --shell /usr/sbin/nologin ldf \
 && mkdir -p /var/lib/ldf-server /etc/ldf-server \
 && chown 10001:10001 /var/lib/ldf-server
COPY --from=build /opt/ldf-server /opt/ldf-server
COPY config/default.toml /etc/ldf-server/config.toml
# Defaults for a container; override any of them, or any other setting, with -e / env_file.
ENV PATH=/opt/ldf-server/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LDF_CONFIG=/etc/ldf-server/config.toml \
    LDF_HOST=0.0.0.0 \
    LDF_PORT=8080 \
    LDF_DATA_DIR=/var/lib/ldf-server
# The config (mount your own config.toml read-only over it) and the durable log.
VOLUME ["/etc/ldf-server", "/var/lib/ldf-server"]
WORKDIR /var/lib/ldf-server
EXPOSE 8080
USER 10001:10001
# Ready (200) means loaded and able to write its log; a stale upstream only degrades and stays healthy.
# The start period covers replaying a large durable log.
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
  CMD ["python", "-m", "ldf_server.healthcheck"]
# SIGTERM: in-flight requests get [server] shutdown_timeout (10 s); stop with a longer grace (docker stop -t 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["ldf-server"]
