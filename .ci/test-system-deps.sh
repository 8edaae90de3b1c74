#!/usr/bin/env bash
# `make test` stage: Debian packages that some tests drive for real. Installed when run as root
# (a fresh machine or CI); otherwise one loud SKIP line per package, and the tests that need it
# skip with the same reason. Never `playwright install`: the browser is Debian's chromium.
set -uo pipefail

updated=0
need() {  # package(s), a path glob that proves them installed, what needs them
    local pkgs=$1 probe=$2 why=$3 started
    if compgen -G "$probe" >/dev/null; then
        echo "system-deps: $pkgs present ($why)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "########## SKIP: $pkgs not installed and not root with apt-get;" \
             "run 'sudo apt-get install $pkgs'. Skipped: $why ##########"
        return 0
    fi
    started=$(date +%s)
    if [ "$updated" -eq 0 ]; then apt-get update -qq && updated=1; fi
    # shellcheck disable=SC2086  # the package list is meant to split
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs \
            >/tmp/cratewatch-apt-$$.log 2>&1; then
        echo "system-deps: installed $pkgs in $(( $(date +%s) - started )) s ($why)"
    else
        echo "########## SKIP: apt-get install $pkgs failed (tail of its log below)." \
             "Skipped: $why ##########"
        tail -5 /tmp/cratewatch-apt-$$.log
    fi
    rm -f /tmp/cratewatch-apt-$$.log
}

need postgresql "/usr/lib/postgresql/*/bin/initdb" \
    "analytics on PostgreSQL (tests/test_analytics_*.py, tests/test_deploy_grafana_sql.py)"
need "chromium fonts-dejavu-core" /usr/bin/chromium \
    "the staff page in headless Chromium (tests/test_staff_page.py)"
exit 0
