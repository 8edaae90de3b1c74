#!/usr/bin/env bash
# Debian packages the test suite uses, installed when missing (`make system-deps`, part of
# `make test`). Usage: deploy/install-system-deps.sh GROUP...
#
# Each group is a few Debian packages and the commands that show they are there. As root (or
# with password-less sudo) a missing group is installed with apt-get. When that cannot be done
# (not root, apt-get fails, no network) the script prints a loud
#     SKIP: <group> ... because <reason>
# line, records the reason in .system-deps/<group>.skip for the tests that need the group (they
# skip with that reason, see service/testing/system_deps.py) and carries on: exit status 0.
# Add a group: one case line in each of group_packages, group_commands and group_users.
set -uo pipefail
cd "$(dirname "$0")/.."
STATE_DIR="${SYSTEM_DEPS_DIR:-.system-deps}"
mkdir -p "$STATE_DIR" 2>/dev/null || true  # unwritable: the SKIP line still prints

group_packages() {  # Debian packages of a group
    case "$1" in
        prometheus) echo "prometheus" ;;
        postgresql) echo "postgresql" ;;
        chromium) echo "chromium fonts-dejavu-core" ;;
        selftest) echo "cratewatch-no-such-package" ;;  # tests/test_system_deps.py only
        *) return 1 ;;
    esac
}
group_commands() {  # commands on PATH, or path globs, that show the group is installed
    case "$1" in
        prometheus) echo "promtool prometheus" ;;
        postgresql) echo "/usr/lib/postgresql/*/bin/initdb" ;;
        chromium) echo "/usr/bin/chromium" ;;
        selftest) echo "cratewatch-no-such-command" ;;
        *) return 1 ;;
    esac
}
group_users() {  # what is skipped without the group
    case "$1" in
        prometheus) echo "deploy/check.sh promtool checks and tests/test_deploy_prometheus.py" ;;
        postgresql) echo "analytics on PostgreSQL: tests/test_analytics_*.py, tests/test_deploy_grafana_sql.py" ;;
        chromium) echo "the staff page in headless Chromium: tests/test_staff_page.py" ;;
        selftest) echo "nothing: a group that never installs, for the script's own test" ;;
        *) return 1 ;;
    esac
}

missing_commands() {
    local cmd missing=()
    for cmd in $(group_commands "$1"); do
        if [[ "$cmd" == */* ]]; then
            compgen -G "$cmd" >/dev/null || missing+=("$cmd")
        else
            command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
        fi
    done
    echo "${missing[*]:-}"
}

APT_UPDATED=0
apt_install() {  # apt_install PKG...: returns apt-get's status; output kept short
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" apt-get update -qq || return $?
        APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

can_install() {  # prints why not, when it cannot
    if ! command -v apt-get >/dev/null 2>&1; then echo "apt-get is not available"; return 1; fi
    if [ "$(id -u)" -eq 0 ]; then return 0; fi
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then return 0; fi
    echo "not root and no password-less sudo (run as root: apt-get install $2)"
    return 1
}

skip() {  # skip GROUP REASON
    local line="SKIP: $1 ($(group_users "$1")) because $2"
    printf '\n########\n%s\n########\n\n' "$line" >&2
    echo "$2" 2>/dev/null > "$STATE_DIR/$1.skip" || true
}

for group in "$@"; do
    packages="$(group_packages "$group")" || { echo "unknown group: $group" >&2; exit 2; }
    rm -f "$STATE_DIR/$group.skip"
    missing="$(missing_commands "$group")"
    if [ -z "$missing" ]; then
        echo "system deps: $group present ($(group_commands "$group"))"
        continue
    fi
    if ! why="$(can_install "$group" "$packages")"; then
        skip "$group" "$missing not installed and $why"
        continue
    fi
    echo "system deps: installing $packages (apt-get) for $missing"
    started=$(date +%s)
    # shellcheck disable=SC2086  # the package list is meant to split
    if ! apt_install $packages; then
        skip "$group" "apt-get install $packages failed (exit $?; no network or no Debian?)"
        continue
    fi
    missing="$(missing_commands "$group")"
    if [ -n "$missing" ]; then
        skip "$group" "$missing still missing after apt-get install $packages"
    else
        echo "system deps: installed $packages in $(( $(date +%s) - started )) s"
    fi
done
exit 0
