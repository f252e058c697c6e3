#!/usr/bin/env bash
# llama.cpp's own speed on our model, for `cargo bench --bench models` to be compared with:
# builds llama.cpp's `llama-bench` from the llama.cpp that llama-cpp-python vendors (PyPI is
# reachable where GitHub is not), with the CPU flags our build uses (.cargo/config.toml:
# x86-64-v3 = AVX2, FMA, F16C, BMI2; OpenMP as llama-cpp-2's default), then runs the figures
# the bench prints: a 13-token prompt after a cached prefix, and 128 generated tokens, at the
# bench's context depth.
#
#   scripts/llama_bench.sh [--threads N] [--depth D] [--model models/llm.gguf] [--work DIR]
set -euo pipefail
threads=2 depth=79 model=models/llm.gguf work="${TMPDIR:-/tmp}/llama-bench"
version=0.3.36
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --depth) depth="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--depth D] [--model FILE] [--work DIR]" >&2; exit 2 ;;
  esac
done
[ -f "$model" ] || { echo "no model at $model (scripts/fetch_models.sh --profile test)" >&2; exit 1; }
mkdir -p "$work"
bin="$work/build/bin/llama-bench"
if [ ! -x "$bin" ]; then
  python3 -m pip download --quiet "llama-cpp-python==$version" --no-deps --no-binary :all: -d "$work"
  tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
  cmake -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$work/build" --target llama-bench -j"$(nproc)" >/dev/null
fi
"$bin" -m "$model" -t "$threads" -p 13 -n 128 -d "$depth" -r 8
