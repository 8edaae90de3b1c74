#!/bin/sh
# Install the cratewatch service, and only the service (no torch), into a fresh virtualenv.
# Usage: install-service.sh VENV_DIR SOURCE_DIR
# The Dockerfile's build stage runs this, and tests/test_deploy_docker.py runs the same file on
# the same sources, so the image's install is the one that gets tested.
set -eu
venv="$1"
src="$2"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir "$src"
# torch is only in the training extra; a service dependency that dragged it in would bloat the
# image by gigabytes, so fail the build instead.
if "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    echo "install-service: torch ended up in the service environment" >&2
    exit 1
fi
