# born — a thin front door to CMake. `make help` lists the targets.
BUILD      ?= build
SAN_BUILD  ?= build-sanitize
CMAKE_ARGS ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
CC         ?= cc
ifeq ($(CI),true)
  CMAKE_ARGS += -DBORN_WERROR=ON
endif

FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all test test-cuda demo bench sanitize fuzz deps format clean install help configure

all: configure
	cmake --build $(BUILD) -j $(JOBS)

# Always (re)configure: it is quick, and it picks up what deps.sh installed since the last run
# (a build configured before Criterion was installed gains its tests).
configure:
	@bash scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
	  $(CMAKE_ARGS) > $(BUILD).configure.log || { cat $(BUILD).configure.log; exit 1; }

## test: install test dependencies, build, fuzz each reader for 60 s, every CPU test; ends with CTest's summary
test:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory all
	cd $(BUILD) && ctest --output-on-failure --no-tests=error -j $(JOBS)

## demo: install what it needs, build, run the main job
demo:
	@bash scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	bash scripts/demo.sh $(BUILD)

## bench: run the benchmarks (JSON lines)
bench: all
	@for b in $(BUILD)/bench_*; do [ -x "$$b" ] && "$$b"; done

## sanitize: the whole suite under ASan + UBSan + LeakSanitizer
sanitize:
	@bash scripts/deps.sh test
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBORN_SANITIZE=ON $(CMAKE_ARGS) \
	  > $(SAN_BUILD).configure.log || { cat $(SAN_BUILD).configure.log; exit 1; }
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --no-tests=error -j $(JOBS)

## fuzz: build the libFuzzer targets (clang, ASan + UBSan) and run each for FUZZ_SECONDS
fuzz:
	@bash scripts/deps.sh test
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBORN_FUZZ=ON -DBORN_SANITIZE=ON -DBORN_CUDA=OFF \
	  -DBORN_BUILD_TESTS=OFF $(CMAKE_ARGS) > $(FUZZ_BUILD).configure.log \
	  || { cat $(FUZZ_BUILD).configure.log; exit 1; }
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target born_static
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

## test-cuda: on a machine with an NVIDIA GPU: build the CUDA plugin and run the GPU suite
test-cuda:
	cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build build-cuda -j $(JOBS) --target born_cuda cuda_tests
	cd build-cuda && ctest -L cuda --output-on-failure

## cross-aarch64: cross-compile for aarch64 (NEON kernels) and run the unit tests under qemu-user
# Left out: the e2e suites (tests/e2e: they start the born command, which this target does not
# build, or compile a program against the installed library with the host's compiler) and the
# GPU suites (label cuda: no CUDA plugin in this build).
CROSS_BUILD ?= build-aarch64
CROSS_SKIP  := ^($(subst $(eval) ,|,$(strip $(basename $(notdir $(wildcard tests/e2e/test_*.c))))))$$
.PHONY: cross-aarch64
cross-aarch64:
	@bash scripts/deps.sh cross
	@cmake -S . -B $(CROSS_BUILD) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/toolchain-aarch64.cmake \
	  -DCMAKE_BUILD_TYPE=Release -DBORN_CUDA=OFF $(CMAKE_ARGS) > $(CROSS_BUILD).configure.log \
	  || { cat $(CROSS_BUILD).configure.log; exit 1; }
	cmake --build $(CROSS_BUILD) -j $(JOBS) --target born_static
	cmake --build $(CROSS_BUILD)/tests -j $(JOBS)
	cd $(CROSS_BUILD) && ctest --output-on-failure --no-tests=error -j $(JOBS) -LE cuda \
	  -E '$(CROSS_SKIP)'

## deps: install the Debian packages for building, testing and the reference scripts
deps:
	bash scripts/deps.sh all

## format: clang-format every C source and header
format:
	clang-format -i $$(git ls-files '*.c' '*.h')

## install: headers, libraries, pkg-config file and CMake package into PREFIX
install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'
