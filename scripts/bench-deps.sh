#!/usr/bin/env bash
# Installs what `cargo bench --bench compare` runs beside cairn, on a Debian machine:
# Prometheus 2.42 and VictoriaMetrics 1.79 (Debian 12's packages; the comparison table
# was taken against these) and the node exporter. Idempotent: when all three programs are
# on PATH it touches nothing; otherwise it runs `apt-get update` once and installs the
# missing packages without questions. Needs root or sudo.
set -euo pipefail

# package name -> program the harness looks up on PATH
declare -A program_of=(
  [prometheus]=prometheus
  [victoria-metrics]=victoria-metrics
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
    echo "bench-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "bench-deps: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "bench-deps: prometheus, victoria-metrics and prometheus-node-exporter already installed"
fi

for program in "${program_of[@]}"; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "bench-deps: $program is still not on PATH after the install" >&2
    exit 1
  fi
done
# The packages' own system services are not needed: the harness starts its own instances
# on loopback ports with temporary data directories.
