#!/usr/bin/env bash
# Installs what `cargo bench --bench compare` runs beside cairn, on a Debian machine:
# Prometheus 2.42 and VictoriaMetrics 1.79 (Debian 12's packages; the comparison table
# was taken against these) and the node exporter. Idempotent; needs root or sudo (see
# require-packages.sh).
set -euo pipefail

bash "$(dirname "$0")/require-packages.sh" bench-deps \
  prometheus victoria-metrics prometheus-node-exporter
