# Calcifer's image: `docker build -t calcifer .` then `docker run -p 8080:8080 calcifer`.
# Build stage: deploy/install.py (the same script the test suite runs) makes /opt/calcifer, a virtual
# environment with only the run-time dependencies, installed from requirements.lock with their hashes.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY deploy/install.py deploy/install.py
COPY src src
RUN python3 deploy/install.py --prefix /opt/calcifer --source /src

# Run stage: the environment and nothing of the build. A non-root user; the root file system can be
# read-only (`docker run --read-only --tmpfs /tmp`): bytecode is compiled at install, the tokenizer
# cache goes to /tmp, and the default SQLite ledger to the /var/lib/calcifer volume.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/calcifer --no-create-home calcifer \
    && mkdir -p /var/lib/calcifer/journal && chown -R calcifer:calcifer /var/lib/calcifer
COPY --from=build /opt/calcifer /opt/calcifer
ENV PATH=/opt/calcifer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/cache \
    SERVER_PORT=8080 \
    CALCIFER_DATABASE_URL=sqlite:////var/lib/calcifer/calcifer.db
WORKDIR /var/lib/calcifer
VOLUME /var/lib/calcifer
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SERVER_PORT', '8080') + '/health/live', timeout=2)"]
ENTRYPOINT ["calcifer"]
CMD ["serve"]
