#!/usr/bin/env bash
# build.sh builds the rundock "host" image locally, with no registry: a small machine image
# for the multi-host tests. It holds Debian's runit (runsvdir, runsv, sv), the docker CLI
# (talking to the engine through a mounted /var/run/docker.sock), Debian's etcd 3.4, busybox
# as /bin/sh and its applets, the libc those binaries need, and a static announcer built from
# this checkout, and rundock (static) to render and apply service trees on the host.
# Packed with `docker import`, like the echo image.
# Usage: examples/images/host/build.sh [TAG]   (default rundock-host:latest)
# ANNOUNCER_BIN=/path/announcer uses a prebuilt static announcer instead of building one.
set -euo pipefail
tag=${1:-rundock-host:latest}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/local/bin" "$root/tmp" "$root/root" \
  "$root/etc/sv" "$root/var/run" "$root/var/log" "$root/data" "$root/service"
chmod 1777 "$root/tmp"
# Each program goes to /usr/bin in the image, wherever it is on this machine.
for name in runsvdir runsv sv svlogd docker etcd etcdctl; do
  b=$(command -v "$name") || { echo "build.sh: $name is missing: run scripts/setup.sh (runit, docker.io, etcd-server, etcd-client)" >&2; exit 1; }
  cp "$b" "$root/usr/bin/$name"
  # The shared libraries it needs (libc and the loader on Debian 12; none when static).
  { ldd "$b" 2>/dev/null || true; } | awk '/=>/ {print $3} /^\t\// {print $1}' | while read -r lib; do
    [ -f "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp /bin/busybox "$root/bin/busybox"
# Every busybox applet (sh, date, sleep, timeout, mv, ...) the rendered scripts may use.
for a in $(/bin/busybox --list); do
  [ -e "$root/bin/$a" ] || [ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
if [ -n "${ANNOUNCER_BIN:-}" ]; then
  cp "$ANNOUNCER_BIN" "$root/usr/local/bin/announcer" # a prebuilt static binary
else
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$root/usr/local/bin/announcer" ./cmd/announcer)
fi
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$root/usr/local/bin/rundock" ./cmd/rundock)

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root' \
  --change 'CMD ["/usr/bin/runsvdir", "-P", "/service"]' \
  - "$tag" >/dev/null
echo "$tag"
