# rundock: `make demo` runs the whole chain; `make test` runs every test on the real parts.
GO      ?= go
BIN     := bin
PKGS    := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table or DWARF (25.5 -> 17.7 MiB for rundock), as the packages build them.
# Ansible copies the module binary for every task, so its size is per-task cost. Panics still
# name functions and file:line (those come from pclntab, which stays); `go version -m` works.
LDFLAGS := -s -w -X github.com/rundock/rundock/internal/version.Version=$(VERSION)

.PHONY: all build setup test unit lint demo demo-down bench clean

all: build

# Static (CGO_ENABLED=0), as the packages build them: no dynamic loader at each start,
# which an apply of hundreds of services or an Ansible task pays every run.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rundock ./cmd/rundock
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/announcer ./cmd/announcer
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rundock-module ./cmd/rundock-module

setup:
	bash scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Every test, unit and integration, against real runit, Docker, etcd, CoreDNS, nginx and
# Ansible. setup installs what is missing first. ./integration runs beside the rest
# (scripts/test.sh says why that is safe).
test: setup lint build
	GO=$(GO) bash scripts/test.sh

unit: lint
	$(GO) test -count=1 -short $(PKGS)

demo: setup build
	bash scripts/demo.sh

demo-down:
	bash scripts/demo.sh down

bench: setup build
	bash scripts/bench.sh

clean:
	rm -rf $(BIN)

# Regenerates module/rundock.yml from the option table (internal/spec/options.go) and
# templates/module-doc.yml.tmpl; a unit test fails when the committed file is stale.
.PHONY: generate
generate:
	$(GO) run ./internal/spec/gendoc

# Debian package bin/rundock_VERSION_ARCH.deb (nfpm; GOARCH=arm64 make deb for another
# architecture) and Ansible collection bin/rundock-rundock-VERSION.tar.gz (ansible-galaxy;
# COLLECTION_ARCHES, default "amd64 arm64"). packaging/README.md says what is in them;
# integration/pkg tests both (go test -count=1 -v -run 'TestDeb|TestCollection' ./integration/pkg).
.PHONY: deb collection
deb:
	bash scripts/setup-pkg.sh nfpm
	bash packaging/build-deb.sh

collection:
	bash packaging/build-collection.sh
