#!/usr/bin/env bash
# setup.sh installs what rundock's tests and demo need, idempotently: Debian's runit,
# etcd-server, nginx, ansible-core, dnsutils and busybox-static, and CoreDNS built with
# `go install`. A second run on a ready machine only checks versions and returns.
set -euo pipefail

COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
GOBIN=${GOBIN:-$(go env GOPATH)/bin}

step() { printf '==> setup: %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# Debian packages, each checked by the command it provides.
need=()
command -v runsvdir   >/dev/null 2>&1 || need+=(runit)
command -v etcd       >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl    >/dev/null 2>&1 || need+=(etcd-client)
command -v nginx      >/dev/null 2>&1 || need+=(nginx)
command -v ansible    >/dev/null 2>&1 || need+=(ansible-core)
command -v dig        >/dev/null 2>&1 || need+=(dnsutils)
[ -x /bin/busybox ]                   || need+=(busybox-static)
command -v ip         >/dev/null 2>&1 || need+=(iproute2)
command -v timeout    >/dev/null 2>&1 || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to install ${need[*]}: run 'sudo make setup'"
  step "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check the package mirror"
  # runit's postinst may try to start runsvdir under an init; policy-rc.d keeps
  # package scripts from starting services on a build or CI machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
# The nginx package starts a server on :80 on some machines; tests run their own.
if pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
  nginx -s quit 2>/dev/null || true
fi

# CoreDNS with the etcd plugin; the build is cached in GOBIN between runs.
if ! "$GOBIN/coredns" -version 2>/dev/null | grep -q "CoreDNS-${COREDNS_VERSION#v}"; then
  step "go install github.com/coredns/coredns@${COREDNS_VERSION} (about 4 minutes)"
  GOFLAGS=-buildvcs=false go install "github.com/coredns/coredns@${COREDNS_VERSION}" \
    || die "cannot build CoreDNS ${COREDNS_VERSION}"
fi

# nfpm and lintian, for make deb and the package tests (integration/pkg).
bash "$(dirname "$0")/setup-pkg.sh"
for c in runsvdir runsv sv svlogd etcd nginx ansible ansible-doc dig docker; do
  command -v "$c" >/dev/null 2>&1 || die "$c is still missing after setup"
done
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start dockerd"
step "ready: $(etcd --version | head -1), $(nginx -v 2>&1), $("$GOBIN/coredns" -version | head -1)"
