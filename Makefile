# opengcs build and test entry points. `make` builds every binary into bin/;
# `make test` installs what the tests need and runs them all (as root).

GO        ?= go
BIN       := bin
GOFLAGS_STATIC := CGO_ENABLED=0
# Commands built with plain `go build` (static, no cgo).
CMDS      := gcs
FUZZTIME  ?= 5s

.PHONY: all build test unit fuzz bench demo deps clean fmt vet

all: build

build: $(addprefix $(BIN)/,$(CMDS))

$(BIN)/%: FORCE
	@mkdir -p $(BIN)
	$(GOFLAGS_STATIC) $(GO) build -trimpath -o $@ ./cmd/$*

FORCE:

# deps installs the system packages the tests use (idempotent).
deps:
	bash test/setup/deps.sh

vet:
	$(GO) vet ./...

test: deps build vet
	$(GO) test -count=1 -timeout 12m ./...
	$(MAKE) fuzz

# fuzz runs every fuzz target briefly on top of its committed seed corpus.
fuzz:
	bash test/setup/fuzz.sh $(FUZZTIME)

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./test/...

demo: build
	$(GO) run ./test/demo

clean:
	rm -rf $(BIN) out
