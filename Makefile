# opengcs build and test entry points. `make` builds every binary into bin/;
# `make test` installs what the tests need and runs them all (as root).

# GO is a go command that runs the version go.mod pins: found, or fetched
# (with a bootstrap Go from Debian on a machine without one), by
# test/setup/go.sh. Its directory leads PATH so that tests running `go`
# get the same one.
ifndef GO
GO := $(shell bash test/setup/go.sh)
ifeq ($(GO),)
$(error test/setup/go.sh found no usable go)
endif
endif
export GO
ifneq ($(findstring /,$(GO)),)
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
endif
BIN       := bin
GOFLAGS_STATIC := CGO_ENABLED=0
# Commands built with plain `go build` (static, no cgo), without the
# symbol table and DWARF (-s -w): they go into the VM image, whose files
# stay in RAM; panics still print function names and lines.
CMDS      := gcs init vsockexec vhost-vsock
FUZZTIME  ?= 5s
# TAGS are the Go build tags of the binaries and of the tests. `rego`
# compiles hcsshim's Rego security-policy enforcer into the gcs
# (pkg/securitypolicy/securitypolicyenforcer_rego.go); without it the gcs
# knows only the open-door and closed-door enforcers and refuses every
# confidential policy (docs/confidential.md). Tests that need the Rego
# enforcer carry `//go:build rego`: plain `go test ./...` skips them, and
# `make test` passes the tag.
TAGS      ?= rego

.PHONY: all build test unit fuzz bench soak demo vm-demo deps clean fmt vet runc-static initrd

all: build

build: $(addprefix $(BIN)/,$(CMDS)) $(BIN)/runc

$(BIN)/%: FORCE
	@mkdir -p $(BIN)
	$(GOFLAGS_STATIC) $(GO) build -trimpath -tags "$(TAGS)" -ldflags '-s -w' -o $@ ./cmd/$*

FORCE:

# runc is built from the version pinned in go.mod (a `tool` dependency), with
# seccomp (cgo + libseccomp-dev from test/setup/deps.sh). runc-static is the
# same binary linked fully statically, for the initrd; the rule fails if the
# result still has an ELF interpreter.
RUNC_PKG  := github.com/opencontainers/runc
$(BIN)/runc: FORCE
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags seccomp -o $@ $(RUNC_PKG)

# initrd writes the utility VM image, out/initrd.img and out/rootfs.tar.gz
# (docs/vm.md), from the static binaries, busybox, mkfs.ext4, dumpe2fs,
# mkfs.xfs and chronyd with their shared libraries, and the modules of the
# installed Debian generic kernel (linux-image-amd64), and copies that
# kernel to out/kernel. deps installs all of these.
initrd: deps $(BIN)/gcs $(BIN)/init $(BIN)/vsockexec $(BIN)/runc-static
	$(GO) run ./cmd/mkinitrd -o out/initrd.img -rootfs out/rootfs.tar.gz -kernel out/kernel -runc $(BIN)/runc-static -report

runc-static: $(BIN)/runc-static
$(BIN)/runc-static: FORCE
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags "seccomp netgo osusergo" \
		-ldflags '-s -w -extldflags -static' -o $@ $(RUNC_PKG)
	@if readelf -l $@ | grep -q INTERP; then echo "$@ is not static" >&2; rm -f $@; exit 1; fi

# deps installs the system packages the tests use (idempotent).
deps:
	bash test/setup/deps.sh

vet:
	$(GO) vet -tags "$(TAGS)" ./...

# RACE_PKGS are the concurrency-heavy packages also tested under -race.
RACE_PKGS := ./service/... ./internal/uvm/... ./internal/reaper/... ./internal/hostclient/... ./internal/command/... ./internal/vsockdev/... ./internal/vhostuser/...

test: deps build vet
	$(GO) test -tags "$(TAGS)" -count=1 -timeout 12m ./...
	$(GO) test -tags "$(TAGS)" -count=1 -race -timeout 8m $(RACE_PKGS)
	$(MAKE) fuzz

# fuzz runs every fuzz target briefly on top of its committed seed corpus.
fuzz:
	bash test/setup/fuzz.sh $(FUZZTIME)

bench: build
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 2s ./test/...

# soak runs 1,000 container lifecycles with exec and stdio through one gcs
# and fails on any leak (docs/performance.md); not part of make test.
soak: build
	$(GO) vet -tags "soak $(TAGS)" ./test/bench/
	$(GO) test -tags "soak $(TAGS)" -count=1 -run '^$$' -bench '^BenchmarkSoak$$' -benchtime 1x -timeout 90m ./test/bench/

demo: deps build
	$(GO) run ./test/demo

# vm-demo boots the image in QEMU with AF_VSOCK through bin/vhost-vsock
# (KVM when /dev/kvm works, TCG otherwise) and drives it like a host.
vm-demo: deps build
	$(GO) run ./test/vmdemo

clean:
	rm -rf $(BIN) out
