# make demo   - build vhd, convert an image the repo makes, show info
# make test   - install the test tools when missing, then run every test
GO ?= go

.PHONY: all build demo test deps vet generated bench fuzz clean

all: build

build:
	$(GO) build -o bin/vhd ./cmd/vhd

demo: build
	./scripts/demo.sh

deps:
	./scripts/install-deps.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=windows $(GO) build ./...
	GOOS=darwin $(GO) build ./...

# The Windows bindings are generated; the committed file must be current.
generated:
	$(GO) generate ./virtdisk/...
	git diff --exit-code -- virtdisk/

# Crash-subset tests are single-goroutine and ~20x slower under -race,
# which skips them; they run here without it.
test: deps vet generated
	$(GO) test -race -timeout 25m ./...
	$(GO) test -count=1 -run 'TestCrashSubsets' ./vhdx

bench: build
	./scripts/bench.sh

clean:
	rm -rf bin
