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
  if [ -f evm/package.json ]; then
    command -v npm >/dev/null 2>&1 \
      || { echo "error: the tests need Node.js/npm for the local EVM chain (npm ci --prefix evm)" >&2; exit 1; }
    npm ci --prefix evm --no-audit --no-fund --loglevel=error
  fi
  need_apt=()
  for pkg_cmd in ${APT_TEST_PACKAGES:-nats-server:nats-server chromium:chromium chromium-driver:chromedriver prometheus:promtool systemd:systemd-analyze}; do
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
  # anvil + Uniswap artifacts for `--source local-chain` (the default replay mode needs none).
  if command -v npm >/dev/null 2>&1; then
    npm ci --prefix evm --no-audit --no-fund --loglevel=error \
      || echo "warning: npm ci --prefix evm failed; --source local-chain will report anvil missing" >&2
  else
    echo "note: npm not found; skipping the local EVM chain (anvil). Replay and live modes work;" \
         "for --source local-chain install Node.js/npm and run: npm ci --prefix evm" >&2
  fi
fi
# Compile the Numba kernels once (on-disk cache), so the first start is not a compile.
.venv/bin/python -m alphapulse.warmup
