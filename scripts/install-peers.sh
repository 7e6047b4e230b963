#!/usr/bin/env bash
# Installs the real peers the tests use (idempotent). Needs root or sudo.
set -euo pipefail
PKGS=(dovecot-imapd dovecot-lmtpd isync curl python3 imapproxy openssl offlineimap3 zstd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-peers: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Dovecot's packaged service is never used by the tests: each test starts its own (scripts/dovecot.sh).
# A dedicated unprivileged user owns the test mail when the tests run as root (Dovecot refuses UID 0 for mail).
if [ "$(id -u)" = 0 ] && ! id imapkit-test >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin imapkit-test
fi
echo "install-peers: ok"
