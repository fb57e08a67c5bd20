#!/usr/bin/env bash
# Installs what cairn's integration tests (tests/*.rs) run besides cairn itself, on a
# Debian machine: Prometheus (the oracle and remote-write peer; the tests were checked
# against 2.42, Debian 12's) and the node exporter. Idempotent: when both programs are
# on PATH it touches nothing; otherwise it runs `apt-get update` once and installs the
# missing packages without questions. Needs root or sudo.
set -euo pipefail

# package name -> program the tests look up on PATH
declare -A program_of=(
  [prometheus]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
)

missing=()
for package in "${!program_of[@]}"; do
  if ! command -v "${program_of[$package]}" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
  else
    echo "test-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "test-deps: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "test-deps: prometheus and prometheus-node-exporter already installed"
fi

# The tests start their own instances on loopback ports; the packages' system services
# are not needed. The oracle assertions were checked against 2.42: say so if it differs.
for program in "${program_of[@]}"; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "test-deps: $program is still not on PATH after the install" >&2
    exit 1
  fi
done
version="$(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')"
case "$version" in
  2.42.*) ;;
  *) echo "test-deps: warning: prometheus ${version:-of unknown version} installed; the oracle tests were checked against 2.42" >&2 ;;
esac
