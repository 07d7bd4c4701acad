#!/usr/bin/env bash
# version.sh prints the package version of the checked-out commit, in one of two syntaxes:
#   version.sh deb     Debian (native: no '-'):  1.2.3, 1.2.3+4.gabc1234, 0.0~git20261203.abc1234
#   version.sh semver  Ansible Galaxy (semver):  1.2.3, 1.2.3+4.gabc1234, 0.0.0+git20261203.abc1234
# A tag vX.Y.Z is the release; commits after it add their count and hash; with no tag the
# version sorts below any release. VERSION=... overrides it (both syntaxes take it as is).
set -euo pipefail
kind=${1:-deb}
if [ -n "${PKG_VERSION:-}" ]; then echo "$PKG_VERSION"; exit 0; fi
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  v=${d#v}
  # v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234
  if [[ $v =~ ^(.*)-([0-9]+)-(g[0-9a-f]+)$ ]]; then v="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"; fi
  echo "$v"
  exit 0
fi
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d 2>/dev/null || echo 19700101)
hash=$(git rev-parse --short=7 HEAD 2>/dev/null || echo 0000000)
case $kind in
  deb)    echo "0.0~git${date}.${hash}" ;;
  semver) echo "0.0.0+git${date}.${hash}" ;;
  *) echo "version.sh: unknown kind $kind: use deb or semver" >&2; exit 2 ;;
esac
