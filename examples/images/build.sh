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
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/echo"]' --change 'ENV PORT=8080' --change 'EXPOSE 8080' \
  - "$tag" >/dev/null
echo "$tag"
