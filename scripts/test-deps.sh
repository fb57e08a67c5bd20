#!/usr/bin/env bash
# Installs what cairn's integration tests (tests/*.rs) run besides cairn itself, on a
# Debian machine: Prometheus (the oracle and remote-write peer; the tests were checked
# against 2.42, Debian 12's) and the node exporter. Idempotent; needs root or sudo
# (see require-packages.sh).
set -euo pipefail

bash "$(dirname "$0")/require-packages.sh" test-deps prometheus prometheus-node-exporter

version="$(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')"
case "$version" in
  2.42.*) ;;
  *) echo "test-deps: warning: prometheus ${version:-of unknown version} installed; the oracle tests were checked against 2.42" >&2 ;;
esac
