# Thin wrapper over CMake. `make demo` runs the main example, `make test` the tests.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all lib test demo bench install clean asan tsan fuzz fuzz-loaders fuzz-export fuzz-optim format format-check

all: lib
lib: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

test: lib
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The letter classifier (data rendered from the installed fonts, cached in
# $(BUILD)/letters/data), then the fusion showcase and grad(tanh). Builds only
# what the demo needs.
# tools/demo_deps.sh installs FreeType, zlib and the fonts when missing (as
# root with apt-get; otherwise it prints the install line and make stops);
# after an install the library checks are run again.
demo: $(BUILD)/Makefile
	@bash tools/demo_deps.sh; rc=$$?; \
	if [ $$rc = 10 ]; then cmake -S . -B $(BUILD) -U 'JX_FREETYPE*' -U 'JX_ZLIB*' \
	  -U '__pkg_config_checked_JX_*' -U 'pkgcfg_lib_JX_*' >/dev/null; elif [ $$rc != 0 ]; then exit $$rc; fi
	cmake --build $(BUILD) -j $(JOBS) --target demo export
	$(BUILD)/examples/demo --out $(BUILD)/letters
	@echo; echo "=== 4. the classifier exported as C (jx_export_c), built and run without jx ==="
	@mkdir -p $(BUILD)/letters/export
	$(BUILD)/examples/export --params $(BUILD)/letters/params.npz --data $(BUILD)/letters/data \
	  --out $(BUILD)/letters/export
	$${CC:-cc} -std=c99 -O2 -I $(BUILD)/letters/export examples/classify/classify.c \
	  $(BUILD)/letters/export/letters_model.c -lm -o $(BUILD)/letters/export/classify
	$(BUILD)/letters/export/classify $(BUILD)/letters/export/glyph.pgm

bench: $(BUILD)/Makefile
	bash bench/run.sh $(BUILD)

install: lib
	cmake --install $(BUILD) --prefix $(PREFIX)

# The sanitizer build CI runs: ASan + UBSan, LeakSanitizer on.
asan:
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DJX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo" test

# ThreadSanitizer over the threads test and two compiles in two threads
# (test_cache's threads scenario) (CI runs it).
tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-fsanitize=thread $(CMAKE_FLAGS)
	cmake --build build-tsan --target test_threads test_cache -j $(JOBS)
	cd tests && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ../build-tsan/tests/test_threads
	cd tests && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ../build-tsan/tests/test_cache threads

# The libFuzzer target (needs clang) for FUZZ_SECONDS; see docs/RELIABILITY.md.
FUZZ_SECONDS ?= 60
fuzz:
	JOBS=$(JOBS) bash fuzz/run.sh $(FUZZ_SECONDS)

# The file loaders' libFuzzer target (fuzz/fuzz_loaders.c), built by the same script.
fuzz-loaders:
	JOBS=$(JOBS) bash fuzz/run.sh build
	bash fuzz/run.sh loaders $(FUZZ_SECONDS)

# The optimizers' libFuzzer target (fuzz/fuzz_optim.c), built by the same script.
fuzz-optim:
	JOBS=$(JOBS) bash fuzz/run.sh build
	bash fuzz/run.sh optim $(FUZZ_SECONDS)

# jx_export_load's libFuzzer target (fuzz/fuzz_export_load.c), built by the same script.
fuzz-export:
	JOBS=$(JOBS) bash fuzz/run.sh build
	bash fuzz/run.sh export $(FUZZ_SECONDS)

# clang-format over every tracked C file (.clang-format; the code was formatted with
# clang-format 14, Debian 12's). format-check fails when a file differs (CI runs it).
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	@bash tools/format.sh fix $(FORMAT_FILES)
format-check:
	@bash tools/format.sh check $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-tsan build-fuzz
