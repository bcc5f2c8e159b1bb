# Thin wrapper over CMake. `make run` and `make test` install missing
# Debian packages first (scripts/install-deps.sh), so both work on a fresh
# Debian 12 machine.

BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
SHARED     ?= $(abspath $(or $(WANWU_SHARED),../shared))
# Models directory: $WANWU_MODELS, else ../shared/models when it exists, else ./models.
MODELS     ?= $(or $(WANWU_MODELS),$(if $(wildcard $(SHARED)/models),$(SHARED)/models,models))

.PHONY: all build deps test test-release test-sanitize run bench clean format

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DWANWU_SANITIZE=ON

# The whole suite, then the whole suite again under ASan + UBSan.
test: deps
	$(MAKE) test-release
	$(MAKE) test-sanitize

test-release: build
	cd $(BUILD) && WANWU_SHARED=$(SHARED) ctest --output-on-failure -j $(JOBS)

test-sanitize: $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && WANWU_SHARED=$(SHARED) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The web page and API on http://127.0.0.1:8080/ with the default model
# (Ctrl-C stops it). SERVE_HOST/SERVE_PORT override the address.
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8080
run: deps build
	WANWU_MODELS=$(MODELS) $(BUILD)/wanwu serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# wanwu against ONNX Runtime and PyTorch (installs them if missing; bench/compare).
bench: build
	bench/compare --wanwu $(BUILD)/wanwu

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
