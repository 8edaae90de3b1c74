#!/usr/bin/env bash
# Fails fast, with the reason, when the disk cannot hold the test environment: the dev install
# (torch is a CUDA build of ~5.5 GB) otherwise dies half-way with pip's bare "[Errno 28] No
# space left on device" (seen in CI, 2026-11-30, after leftover clones had filled the disk).
# Usage: deploy/check-disk.sh DIR NEED_GB   (checks the filesystem that holds DIR)
set -euo pipefail
dir="$1"
need_gb="$2"
mkdir -p "$dir"
free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
free_gb=$((free_kb / 1024 / 1024))
if [ "$free_gb" -lt "$need_gb" ]; then
    echo "ERROR: only ${free_gb} GB free on the filesystem of $(cd "$dir" && pwd);" \
        "the test install needs about ${need_gb} GB (torch + torchvision + the service's" \
        "packages). Free some space (old clones, /tmp/pytest-of-*) and rerun \`make test\`." >&2
    exit 1
fi
echo "disk: ${free_gb} GB free for $(cd "$dir" && pwd) (need ~${need_gb} GB)"
