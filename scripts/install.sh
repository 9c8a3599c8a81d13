#!/usr/bin/env bash
# Install AlphaPulse into .venv at the repo root. With --test also the test
# dependencies: pip extras, the npm packages of the local test chain
# (anvil + Uniswap artifacts) and the Debian packages the tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."
with_test=0
[ "${1:-}" = "--test" ] && with_test=1

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
  if [ -f tests/chain/package.json ]; then
    npm ci --prefix tests/chain --no-audit --no-fund --loglevel=error
  fi
  need_apt=()
  for pkg_cmd in ${APT_TEST_PACKAGES:-nats-server:nats-server chromium:chromium chromium-driver:chromedriver}; do
    pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd##*:}
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  fi
else
  .venv/bin/python -m pip install -q -e .
fi
