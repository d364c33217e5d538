# syntax=docker/dockerfile:1
# ldf-server: build a wheel in one stage, install it into a slim runtime as a non-root user.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ldf_server ./ldf_server
COPY vocabularies ./vocabularies
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/ldf-server ldf \
 && mkdir -p /var/lib/ldf-server /etc/ldf-server \
 && chown ldf /var/lib/ldf-server
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/default.toml /etc/ldf-server/config.toml

ENV LDF_CONFIG=/etc/ldf-server/config.toml \
    LDF_HOST=0.0.0.0 \
    LDF_PORT=8080 \
    LDF_DATA_DIR=/var/lib/ldf-server \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/ldf-server"]
EXPOSE 8080
USER ldf
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"LDF_PORT\",\"8080\")}/health/live', timeout=2)"
ENTRYPOINT ["ldf-server"]
