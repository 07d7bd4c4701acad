#!/usr/bin/env bash
# setup-bench.sh installs what `make bench` needs beyond `make setup`: Debian's `ansible`
# package, which ships the community.general collection (community.general.runit, the
# baseline the converge rows compare against). `make test` does not call it.
set -euo pipefail

step() { printf '==> setup-bench: %s\n' "$*" >&2; }
die() { printf 'setup-bench: %s\n' "$*" >&2; exit 1; }

# ansible-doc exits 0 even for a module it cannot find; look for the module's own docs.
has_runit_module() {
  ansible-doc -t module -j community.general.runit 2>/dev/null | grep -q '"service_dir"'
}

if ! has_runit_module; then
  [ "$(id -u)" = 0 ] || die "need root to install Debian's ansible package: run 'sudo make bench'"
  step "apt-get install ansible (community.general.runit for the baseline play)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check the package mirror"
  apt-get install -y -qq --no-install-recommends ansible >/dev/null \
    || die "apt-get install ansible failed"
  has_runit_module || die "community.general.runit is still missing after installing ansible"
fi
for c in etcd etcdctl runsvdir sv ansible-playbook dig docker curl; do
  command -v "$c" >/dev/null 2>&1 || die "$c is missing: run 'make setup' first"
done
step "ready: $(ansible --version | sed -n 1p), community.general.runit present"
