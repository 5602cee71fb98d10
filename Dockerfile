# provml services in one image. By default the container runs all three components
# (tracker, manager, query) in one process around the embedded store under /data:
#
#   docker build -t provml:latest .
#   docker run --rm -p 127.0.0.1:5000:5000 -v provml-data:/data \
#       -v "$PWD/tokens:/run/secrets/provml-tokens:ro" \
#       -e PROVML_TOKENS_FILE=/run/secrets/provml-tokens provml:latest
#
# It listens on 0.0.0.0, so `provml serve` wants access tokens (docs/security.md), or
# `--insecure-no-auth` appended to the command when nothing beyond this host reaches it.
#
# Any other provml command replaces CMD, e.g. `docker run ... provml:latest serve
# --component tracker --host 0.0.0.0 --manager-url http://manager:5000`, or a manager
# on a shared Oxigraph server: `serve --component manager --host 0.0.0.0 --store
# oxigraph+http://oxigraph:7878` (see docker-compose.yml and docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project only (.dockerignore keeps the virtualenv, data, logs and caches out).
# The `broker` extra (the `redis` client, imported only with `--broker`) is in by default:
# the Compose profile `broker` runs this image. `--build-arg EXTRAS=[demo,broker]` adds
# scikit-learn, which `provml serve --demo` needs.
ARG EXTRAS="[broker]"
COPY . /tmp/provml-src
RUN cd /tmp/provml-src \
    && pip install --no-cache-dir ".${EXTRAS}" \
    && cd / \
    && rm -rf /tmp/provml-src

# Unprivileged user; /data belongs to it, so a fresh named volume mounted there does too.
RUN groupadd --system --gid 10001 provml \
    && useradd --system --uid 10001 --gid provml --create-home --home-dir /home/provml \
       --shell /usr/sbin/nologin provml \
    && mkdir -p /data \
    && chown provml:provml /data
USER provml
WORKDIR /data
VOLUME ["/data"]

# Defaults for a CMD given without these flags (flags win over the environment).
ENV PROVML_HOST=0.0.0.0 \
    PROVML_DATA_DIR=/data

EXPOSE 5000

# No curl in the slim image: Python asks /healthz. This checks port 5000, the port of
# the default CMD; a container run with another --port needs its own health check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4)"]

# Exec form: provml is PID 1 and gets SIGTERM from `docker stop`; it finishes the
# requests in flight and closes the store.
ENTRYPOINT ["provml"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5000", "--data-dir", "/data"]
