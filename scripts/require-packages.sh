#!/usr/bin/env bash
# Installs Debian packages whose program is not on PATH yet: `require-packages.sh TAG
# PACKAGE ...`, where each package's program has the package's name. Idempotent: with
# every program present it touches nothing; otherwise it runs `apt-get update` once and
# installs the missing packages without questions. Needs root or sudo. TAG prefixes the
# messages (the calling script's name). Shared by test-deps.sh and bench-deps.sh.
set -euo pipefail

tag="$1"
shift

missing=()
for package in "$@"; do
  if ! command -v "$package" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
  else
    echo "$tag: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "$tag: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "$tag: $* already installed"
fi

# The packages' system services are not needed (tests and benches start their own
# instances on loopback ports); what matters is that the programs are now on PATH.
for program in "$@"; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "$tag: $program is still not on PATH after the install" >&2
    exit 1
  fi
done
