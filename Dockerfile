# The operator image: `gemma-operator run` as a non-root user on a pinned Python base.
#   docker build -t REGISTRY/gemma-operator:0.1.0 .
# The chart (charts/gemma-operator) runs it with a read-only root filesystem as UID 65532.

# Pinned by digest (the tag is for people: a tag can be re-pushed, a digest cannot). Override with
# --build-arg to move it. The digest is the one public Dockerfiles pin for this tag; Docker Hub was not
# reachable from where it was written, so check it with `docker buildx imagetools inspect`.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: install the package and its dependencies into a virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/gemma-operator
WORKDIR /src
# The dependencies first, exactly as locked (`make lock`): pip refuses any file whose hash differs.
COPY requirements.lock ./
RUN /opt/gemma-operator/bin/pip install --no-compile --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator/ operator/
# A regular (not editable) install: the runtime stage gets no source tree. No dependencies of its own.
RUN /opt/gemma-operator/bin/pip install --no-compile --no-deps . \
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
