#!/usr/bin/env bash
# build-deb.sh (make deb) builds bin/rundock_VERSION_ARCH.deb with nfpm: rundock and
# announcer for GOARCH (default: this machine's; PIE, stripped, no cgo) whose default bin_dir
# is the package's /usr/bin; the module documentation generated for that default; the rundock
# upstreams runit service rendered by rundock itself; manual pages from --help; README,
# examples, copyright and a Debian changelog. Needs nfpm (scripts/setup-pkg.sh, run by make
# setup). It prints the path of the package on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

GOBIN=${GOBIN:-$(go env GOPATH)/bin}
NFPM=${NFPM:-$GOBIN/nfpm}
[ -x "$NFPM" ] || { echo "build-deb: nfpm is not installed in $GOBIN: run make setup" >&2; exit 1; }

export DEB_ARCH=${GOARCH:-$(go env GOARCH)}
export DEB_VERSION=$(bash packaging/version.sh deb)
BIN_DIR=/usr/bin
out=${OUT_DIR:-bin}
export STAGE=$out/pkg/deb-$DEB_ARCH
rm -rf "$STAGE" "$out"/rundock_*_"$DEB_ARCH".deb
mkdir -p "$STAGE/doc" "$STAGE/host"

# internal/defaults.BinDir is where the rendered scripts call rundock and announcer; the
# package sets it to /usr/bin at link time (a source build keeps /usr/local/bin).
ldflags="-s -w -X github.com/rundock/rundock/internal/version.Version=$DEB_VERSION -X github.com/rundock/rundock/internal/defaults.BinDir=$BIN_DIR"
# PIE: position-independent (ASLR), and what Debian expects of an executable (lintian's
# statically-linked-binary exempts PIE); still no cgo and no libc dependency.
for c in rundock announcer; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$DEB_ARCH go build -trimpath -buildmode=pie -ldflags "$ldflags" -o "$STAGE/$c" ./cmd/$c
done
# A build for this machine renders what the package ships, whatever GOARCH is.
CGO_ENABLED=0 GOARCH= go build -trimpath -ldflags "$ldflags" -o "$STAGE/host/rundock" ./cmd/rundock
GOARCH= go run -ldflags "$ldflags" ./internal/spec/gendoc -o "$STAGE/rundock.yml"
if ! awk '/^    bin_dir:/ {b=1} b && /default:/ {print $2; exit}' "$STAGE/rundock.yml" | grep -qx "$BIN_DIR"; then
  echo "build-deb: WARNING: the default bin_dir is still not $BIN_DIR: the rendered scripts will call" \
    "rundock and announcer where this package does not install them. -X needs" \
    "internal/defaults.BinDir to be a var, not a const (packaging/README.md)." >&2
fi

# The upstreams service runs the binary that rendered it (os.Executable); rendered here, its
# path is the staging one, replaced by the installed one. integration/pkg checks the result
# equals what the installed /usr/bin/rundock renders.
"$STAGE/host/rundock" upstreams --install-service --watch --config /etc/rundock/upstreams.yml \
  --sv-dir "$STAGE/sv" 2>/dev/null >/dev/null
rm -f "$STAGE/sv/.rundock.lock"
staged="'$(cd "$STAGE/host" && pwd -P)/rundock'"
sed -i "s|$staged|'$BIN_DIR/rundock'|" "$STAGE/sv/rundock-upstreams/run"
grep -q "^exec '$BIN_DIR/rundock' 'upstreams'" "$STAGE/sv/rundock-upstreams/run" \
  || { echo "build-deb: the rendered upstreams run script does not call $BIN_DIR/rundock" >&2; exit 1; }

mkdir -p "$STAGE/man"
GOARCH= go run -ldflags "$ldflags" ./packaging/manpage -o "$STAGE/man" -version "$DEB_VERSION" \
  -date "$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%d 2>/dev/null || date -u +%F)"
gzip -9nf "$STAGE/man/rundock.1" "$STAGE/man/announcer.1"

cp README.md "$STAGE/doc/README.md"
cp -r examples "$STAGE/doc/examples"
bash packaging/deb/copyright.sh "$STAGE/rundock" "$STAGE/announcer" >"$STAGE/doc/copyright"
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
cat >"$STAGE/doc/changelog" <<CHANGELOG
rundock ($DEB_VERSION) unstable; urgency=medium

  * Built from git commit $commit.

 -- rundock maintainers <rundock@example.com>  $date
CHANGELOG
gzip -9nf "$STAGE/doc/changelog"

"$NFPM" pkg --packager deb --config packaging/deb/nfpm.yaml --target "$out/" >&2
deb=$out/rundock_${DEB_VERSION}_${DEB_ARCH}.deb
[ -f "$deb" ] || { echo "build-deb: nfpm did not write $deb" >&2; exit 1; }
echo "$deb"
