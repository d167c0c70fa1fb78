# The two commands of the README: `make demo` and `make test`.
# Everything else is plain CMake + Ninja in build/.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test bench fuzz-configure fuzz fuzz-safetensors fuzz-npy fuzz-idx fuzz-metrics fuzz-onnx clean

all: build

deps:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job (scripts/demo.sh): train LeNet with and without BatchNorm on
# Fashion-MNIST, compare the runs (a table, one SVG), then build lenet_bn's
# BatchNorm-folded inference program from its checkpoint, check its test
# accuracy against the trainer's and time it. Files in $(BUILD)/demo/;
# DEMO_EPOCHS=N (default 5) sets the epochs of both runs.
demo: build
	@scripts/demo.sh $(BUILD)

# All tests (lit + GoogleTest) through ctest; ctest's summary line is printed last.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) > ctest.log 2>&1; rc=$$?; \
	  cat ctest.log | grep -v 'tests passed, .* tests failed out of'; \
	  grep 'tests passed, .* tests failed out of' ctest.log || echo "ctest failed to run"; exit $$rc

# Kiln against PyTorch (eager and TorchScript-frozen), side by side; see bench/README.md.
bench: build
	@scripts/install-deps.sh bench
	bench/run.sh --build-dir $(BUILD) $(BENCH_ARGS)

# The fuzzers' build: clang-14, every Kiln library instrumented for coverage,
# ASan and UBSan (test/fuzz/README.md).
fuzz-configure:
	@scripts/install-deps.sh fuzz
	cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
	  "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -g -O1" \
	  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -g -O1" \
	  -DKILN_ENABLE_FUZZER=ON

# libFuzzer on the frontend (test/fuzz/README.md). One job; FUZZ_SECONDS long.
# Crashes, timeouts, leaks and OOMs go to fuzz-corpus/artifacts/, the run goes
# on after them (-fork=1 -ignore_*), and the target fails if any are there.
fuzz: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-frontend-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus/artifacts && cp models/*.kiln test/fuzz/regressions/*.kiln fuzz-corpus/
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-frontend-fuzzer fuzz-corpus \
	  -dict=test/fuzz/kiln.dict -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus/artifacts/:"; echo "$$found"; exit 1; fi

# libFuzzer on the runtime's C safetensors reader (what a model built with
# --weights=external runs on a user's checkpoint); seeds: the fixtures.
fuzz-safetensors: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-safetensors-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus-safetensors/artifacts
	for f in test/fixtures/*/weights.safetensors; do \
	  cp $$f fuzz-corpus-safetensors/$$(basename $$(dirname $$f)).safetensors; done
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-safetensors-fuzzer fuzz-corpus-safetensors \
	  -dict=test/fuzz/safetensors.dict \
	  -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=1048576 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus-safetensors/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus-safetensors/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus-safetensors/artifacts/:"; echo "$$found"; exit 1; fi

# libFuzzer on the runtime's NPY reader (a generated program's --input);
# seeds: the fixtures' inputs.
fuzz-npy: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-npy-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus-npy/artifacts
	for f in test/fixtures/*/input_b1.npy test/fixtures/*/input_b7.npy; do \
	  cp $$f fuzz-corpus-npy/$$(basename $$(dirname $$f))_$$(basename $$f); done
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-npy-fuzzer fuzz-corpus-npy \
	  -dict=test/fuzz/npy.dict \
	  -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=1048576 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus-npy/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus-npy/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus-npy/artifacts/:"; echo "$$found"; exit 1; fi

# libFuzzer on the runtime's IDX reader, plain and gzip (--images, --labels);
# seeds: the first items of Fashion-MNIST's test files, gzip and plain.
FASHION_MNIST = /usr/share/datasets/fashion-mnist
fuzz-idx: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-idx-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus-idx/artifacts
	for set in images-idx3 labels-idx1; do \
	  /usr/bin/python3 test/EndToEnd/Inputs/idx_head.py $(FASHION_MNIST)/t10k-$$set-ubyte.gz \
	    fuzz-corpus-idx/$$set.gz 2 && \
	  gzip -dc fuzz-corpus-idx/$$set.gz > fuzz-corpus-idx/$$set; done
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-idx-fuzzer fuzz-corpus-idx \
	  -dict=test/fuzz/idx.dict \
	  -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=1048576 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus-idx/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus-idx/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus-idx/artifacts/:"; echo "$$found"; exit 1; fi

# libFuzzer on the runtime's training metrics CSV reader (kilnc plot, a
# resumed run) and the writer's round trip; seeds: a few valid files.
METRICS_HEADER = epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,step_seconds,eval_seconds,samples_per_second
# libFuzzer on the ONNX importer: corpus of the bad-model fixtures and the
# smallest PyTorch export.
fuzz-onnx: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-onnx-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus-onnx/artifacts
	cp test/fixtures/onnx-bad/*.onnx test/fixtures/onnx/simple_net.opset13.onnx \
	  test/fixtures/onnx-windows/*.opset13.onnx \
	  test/fuzz/regressions/onnx/*.onnx fuzz-corpus-onnx/
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-onnx-fuzzer fuzz-corpus-onnx \
	  -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus-onnx/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus-onnx/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus-onnx/artifacts/:"; echo "$$found"; exit 1; fi

fuzz-metrics: fuzz-configure
	cmake --build $(BUILD)-fuzz --target kiln-metrics-fuzzer -j $(JOBS)
	mkdir -p fuzz-corpus-metrics/artifacts
	printf '%s\n' '$(METRICS_HEADER)' > fuzz-corpus-metrics/header-only.csv
	printf '%s\n' '$(METRICS_HEADER)' '1,0.512345679,0.8125,0.45,0.84,12.5,11.25,1.25,4800' \
	  '2,0.4,0.85,0.41,0.86,12.25,11,1.25,4897.95918' > fuzz-corpus-metrics/two-epochs.csv
	printf '%s\n' '$(METRICS_HEADER)' '0,2.30258509,0.1,,,3.5,3,,17142.8571' \
	  '7,inf,1,-inf,0,1e-300,0,0,1.79769313e+308' > fuzz-corpus-metrics/absent-and-limits.csv
	printf '%s\r\n' '$(METRICS_HEADER)' '3,0.25,0,0.3,1,1,1,1,1' > fuzz-corpus-metrics/crlf.csv
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)-fuzz/bin/kiln-metrics-fuzzer fuzz-corpus-metrics \
	  -dict=test/fuzz/metrics.dict \
	  -max_total_time=$(or $(FUZZ_SECONDS),600) \
	  -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
	  -artifact_prefix=fuzz-corpus-metrics/artifacts/ \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
	@found=$$(ls fuzz-corpus-metrics/artifacts); if [ -n "$$found" ]; then \
	  echo "fuzz: findings in fuzz-corpus-metrics/artifacts/:"; echo "$$found"; exit 1; fi

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
