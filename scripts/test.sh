#!/usr/bin/env bash
# test.sh runs every test (`make test`) in two streams at once on the one Docker engine:
# ./integration alone (the long suite: real runit trees, containers and load, about 12
# minutes), and every other package one after another (units, the TLS etcd, the render
# scripts under runsv, the Debian package and the collection). The two share no names
# (each suite has its own rdtest-* prefix), no ports (all free ports) and no directories
# (each test its own temp dirs; testenv builds the binaries once per checkout, under a lock).
# The integration stream prints as it runs; the other's output follows it. Exit status:
# non-zero when either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
others=$($GO list ./... | grep -v '/integration$')
log=$(mktemp /tmp/rundock-test-others.XXXXXX)
trap 'rm -f "$log"' EXIT
$GO test -count=1 -timeout 75m -p 1 $others >"$log" 2>&1 &
pid=$!
$GO test -count=1 -timeout 75m -p 1 ./integration/
rc_int=$?
wait "$pid"
rc_oth=$?
printf '\n==> the other packages (run alongside ./integration)\n'
cat "$log"
if [ "$rc_int" -ne 0 ] || [ "$rc_oth" -ne 0 ]; then
  printf '\nmake test: FAILED (integration exit %d, other packages exit %d)\n' "$rc_int" "$rc_oth"
  exit 1
fi
