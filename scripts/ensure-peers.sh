#!/usr/bin/env bash
# Runs before `npm test`: installs missing peers when it can; otherwise says loudly what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
need=0
for bin in dovecot mbsync curl python3 imapproxyd openssl; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need=1
done
if [ "$(id -u)" = 0 ] && ! id imapkit-test >/dev/null 2>&1; then need=1; fi
if [ $need = 1 ]; then
  if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    bash scripts/install-peers.sh || { echo "ensure-peers: install-peers.sh failed" >&2; exit 1; }
  elif [ "${CI:-}" = "true" ]; then
    echo "ensure-peers: peers are missing and cannot be installed (not root, no sudo)" >&2; exit 1
  else
    echo "################################################################" >&2
    echo "# ensure-peers: peers missing and not root: interop tests will SKIP" >&2
    echo "################################################################" >&2
  fi
fi
exit 0
