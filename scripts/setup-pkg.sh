#!/usr/bin/env bash
# setup-pkg.sh installs what `make deb`, `make collection` and their test (integration/pkg)
# need, idempotently: nfpm built with `go install` (cached in GOBIN), Debian's lintian, and
# ansible-galaxy (from ansible-core, which setup.sh installs). A second run on a ready machine
# only checks versions and returns.
set -euo pipefail

NFPM_VERSION=${NFPM_VERSION:-v2.48.0}
GOBIN=${GOBIN:-$(go env GOPATH)/bin}

step() { printf '==> setup-pkg: %s\n' "$*" >&2; }
die() { printf 'setup-pkg: %s\n' "$*" >&2; exit 1; }

# "setup-pkg.sh nfpm" (make deb) installs only what building needs; lintian is for the tests.
only=${1:-all}

if [ "$only" != nfpm ] && ! command -v lintian >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "need root to install lintian: run 'sudo make setup'"
  step "apt-get install lintian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check the package mirror"
  apt-get install -y -qq --no-install-recommends lintian >/dev/null \
    || die "apt-get install lintian failed"
fi

# A go-installed nfpm reports "GitVersion: dev"; the module version is in the build info.
if ! go version -m "$GOBIN/nfpm" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+${NFPM_VERSION}[[:space:]]"; then
  step "go install github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}"
  GOFLAGS=-buildvcs=false GOBIN="$GOBIN" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}" \
    || die "cannot build nfpm ${NFPM_VERSION}"
fi

if [ "$only" = nfpm ]; then
  step "ready: nfpm ${NFPM_VERSION}"
  exit 0
fi
for c in lintian dpkg dpkg-deb ansible-galaxy ansible-playbook; do
  command -v "$c" >/dev/null 2>&1 || die "$c is still missing after setup"
done
step "ready: nfpm ${NFPM_VERSION}, $(lintian --version)"
