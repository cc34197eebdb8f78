# The AUTO toolkit's image: auto-deploy, auto-docs and auto-pipelines installed from the wheel in dist/, and the docker
# CLI; it runs as the unprivileged user `auto` (uid 10001). The toolkit's CI/CD components run their jobs in it
# (image: $CI_REGISTRY/auto/toolkit:<release>). Built from the repository's root, after the wheel:
#
#   python -m build --wheel        # exactly one auto_toolkit-*.whl in dist/
#   docker build -f Dockerfile --build-arg BASE_IMAGE=python:3.11-slim --build-arg DOCKER_CLI_IMAGE=docker:28-cli \
#       -t "$CI_REGISTRY/auto/toolkit:1.2.0" .
#
# BASE_IMAGE is a Python 3.11 image with python and pip in /usr/local/bin and useradd; DOCKER_CLI_IMAGE one that holds
# a static docker client at /usr/local/bin/docker. The local lab builds this file offline
# (python -m deployer.lab.toolkit_image): its base has a wheelhouse and sets PIP_NO_INDEX/PIP_FIND_LINKS, so the same
# `pip install` finds every dependency there instead of on the package index.
ARG BASE_IMAGE=python:3.11-slim
ARG DOCKER_CLI_IMAGE=docker:28-cli

FROM ${DOCKER_CLI_IMAGE} AS docker-cli

FROM ${BASE_IMAGE}
# PYTHONDONTWRITEBYTECODE, and no .pyc installed (--no-compile): the user could not write them into
# /opt/auto-toolkit (it belongs to root), and compiling everything would add ~30 MB to save ~0.3 s of a deploy's start.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTO_DOCKER_CLI=/usr/local/bin/docker
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/auto --shell /usr/sbin/nologin auto
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
# The wheel and its dependencies, into a virtualenv of their own, in one layer: binary wheels only (nothing is
# compiled, so no compiler is needed or left behind), no pip cache, no pip, setuptools or wheel in the virtualenv.
# One stage, not an install stage copied from: the copy would save only the wheel's own layer (~0.4 MB).
COPY dist/auto_toolkit-*.whl /tmp/dist/
RUN set -eu; \
    set -- /tmp/dist/auto_toolkit-*.whl; \
    if [ "$#" -ne 1 ]; then echo "expected exactly one auto_toolkit-*.whl in dist/, found $#: $*" >&2; exit 1; fi; \
    python -m venv --without-pip /opt/auto-toolkit; \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ONLY_BINARY=:all: PIP_ROOT_USER_ACTION=ignore \
        python -m pip --python /opt/auto-toolkit/bin/python install --no-compile "$1"; \
    rm -rf /tmp/dist; \
    /opt/auto-toolkit/bin/auto-deploy --version
ENV PATH=/opt/auto-toolkit/bin:${PATH}
USER 10001:10001
WORKDIR /home/auto
LABEL org.opencontainers.image.title="AUTO toolkit" \
      org.opencontainers.image.description="auto-deploy, auto-docs and auto-pipelines with the docker CLI"
CMD ["auto-deploy", "--help"]
