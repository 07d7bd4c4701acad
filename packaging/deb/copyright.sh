#!/usr/bin/env bash
# copyright.sh BINARY... prints /usr/share/doc/rundock/copyright (Debian's machine-readable
# format) with the Go modules statically linked into the binaries, read from their build info.
set -euo pipefail
cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rundock
Upstream-Contact: rundock maintainers <rundock@example.com>
Source: https://github.com/rundock/rundock

Files: *
Copyright: 2025-2026 rundock maintainers
License: no-license-declared
Comment:
 rundock and announcer are statically linked Go programs. Besides rundock's own
 code they contain the Go standard library (BSD-3-Clause) and these modules, each
 under the license in its own repository:
HEAD
go version -m "$@" | awk '$1 == "dep" { print " " $2 " " $3 }' | sort -u
cat <<'TAIL'

License: no-license-declared
 The rundock source repository does not declare a license yet. Until it does,
 redistribution is subject to the authors' permission.
TAIL
