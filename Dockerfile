# The operator image: `gemma-operator run` as a non-root user on a pinned Python base.
#   docker build -t REGISTRY/gemma-operator:0.1.0 .
# The chart (charts/gemma-operator) runs it with a read-only root filesystem as UID 65532.

# Pinned by full version: a rebuild gets the same Python. Override with --build-arg to move it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the package and its dependencies into a virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gemma-operator
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# A regular (not editable) install: the runtime stage gets no source tree.
RUN /opt/gemma-operator/bin/pip install --no-compile . \
 && /opt/gemma-operator/bin/gemma-operator --help >/dev/null

# --- runtime: the virtualenv and nothing else ---------------------------------------------------
FROM ${PYTHON_IMAGE}
# A fixed UID and a passwd entry for it: the chart's runAsUser, and getpass finds a name.
RUN groupadd --system --gid 65532 gemma \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gemma
COPY --from=build /opt/gemma-operator /opt/gemma-operator
ENV PATH=/opt/gemma-operator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
# kopf's liveness endpoint (/healthz) and the Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["gemma-operator", "run"]
