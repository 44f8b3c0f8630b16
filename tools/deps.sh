#!/usr/bin/env bash
# Install every Debian package that gatehouse's build, tests, demo and
# benchmarks need. Idempotent and non-interactive: when everything is already
# installed it only checks and exits. Needs root (or sudo) to install.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libev-dev libldap-dev libmemcached-dev libssl-dev libcmocka-dev libinih-dev libbsd-dev
  libcurl4-openssl-dev
  haproxy memcached libmemcached-tools slapd ldap-utils
  dovecot-imapd dovecot-pop3d dovecot-gssapi
  krb5-kdc krb5-admin-server krb5-user libkrb5-dev cyrus-clients libsasl2-modules-gssapi-mit python3-gssapi
  nginx-light libnginx-mod-mail
  python3 python3-pytest python3-cryptography python3-matplotlib curl openssl wrk socat procps iproute2 inotify-tools
  debhelper lintian
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo -E)
export DEBIAN_FRONTEND=noninteractive
# Never let the packages start their system services: gatehouse's tests and
# demo run their own instances on free loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${SUDO[@]}" apt-get update -qq
# --no-install-recommends matters: cyrus-clients' cyrus-common recommends
# cyrus-imapd, which conflicts with (and so removes) dovecot-imapd.
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
