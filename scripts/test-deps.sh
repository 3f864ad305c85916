#!/usr/bin/env bash
# Installs what `make test` needs on a Debian machine when it is missing.
# Later milestones add packages (chromium …) here.
set -euo pipefail

# command-to-check:debian-package
NEEDS=(
  "gcc:gcc"                       # go test -race needs cgo
  "curl:curl"                     # README tour
  "jq:jq"                         # README tour
  "systemd-analyze:systemd"       # unit checks
  "sipp:sip-tester"               # SIP scenarios against the binary
  "baresip:baresip-core"          # a real phone in call tests
  "tcpdump:tcpdump"               # RTP capture on loopback in call tests
)

# make bench also needs the reference registrar.
if [ "${BENCH_DEPS:-}" = 1 ]; then
  NEEDS+=("kamailio:kamailio")
fi

missing=()
for pair in "${NEEDS[@]}"; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing ${missing[*]}; run 'make test-deps' as root or install them with apt-get" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
