#!/usr/bin/env bash
# Installs what `make test` needs on a Debian machine when it is missing.
# The browser tests' npm packages (cmd/pbxd/testdata/browser) are not
# installed here: the tests run `npm ci` from the lockfile themselves, once,
# and again only when the lockfile changes.
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
  "chromium:chromium"             # browser softphones (JsSIP, SIP.js) in headless Chromium
  "node:nodejs"                   # drives Chromium (playwright-core) in the browser tests
  "npm:npm"                       # installs the browser tests' packages (npm ci)
  "unshare:util-linux"            # calls inside a loopback-only network namespace
  "ip:iproute2"                   # brings loopback up in that namespace
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

# playwright-core needs Node.js 20 or later (Debian 12's own nodejs is 18):
# the browser tests then fail and say so.
check_node() {
  command -v node >/dev/null 2>&1 || return 0
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    echo "test-deps: Node.js $major is too old for the browser tests (they need 20 or later)" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  check_node
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
check_node
