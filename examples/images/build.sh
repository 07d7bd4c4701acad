#!/usr/bin/env bash
# build.sh builds the rundock-echo image locally, with no registry: a static Go binary and
# busybox as /bin/sh (for health check commands), packed with `docker import`.
# Usage: examples/images/build.sh [TAG]   (default rundock-echo:latest)
set -euo pipefail
tag=${1:-rundock-echo:latest}
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp"
CGO_ENABLED=0 go build -trimpath -o "$root/echo" "$here/echo"
cp /bin/busybox "$root/bin/sh"
# docker import makes a new image every time (the tar's times differ): keep the existing
# one when its content is the same, and drop the image a rebuild leaves untagged.
sum=$(cat "$root/echo" "$root/bin/sh" | sha256sum | cut -c1-64)
old=$(docker image inspect --format '{{.Id}} {{index .Config.Labels "rundock.content"}}' "$tag" 2>/dev/null || true)
if [ "${old#* }" = "$sum" ]; then
  echo "$tag"
  exit 0
fi
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/echo"]' --change 'ENV PORT=8080' --change 'EXPOSE 8080' \
  --change "LABEL rundock.content=$sum" \
  - "$tag" >/dev/null
if [ -n "$old" ]; then
  docker image rm "${old%% *}" >/dev/null 2>&1 || true # still used by a container: keep it
fi
echo "$tag"
