#!/usr/bin/env bash
# A CUDA toolkit without a GPU and without NVIDIA's installer: assembles a toolkit root from the
# CUDA 13.0 Python wheels on PyPI (nvcc, cicc, headers, cudart, cuBLAS), so that
# `cargo build --release --features cuda` compiles and links on a machine with no GPU (our
# development machines, CI runners). The binary then runs on any machine with an NVIDIA driver
# that supports CUDA 13 (R580 or newer) and the cuBLAS 13 libraries (the CUDA runtime image has them).
#
#   scripts/cuda_toolkit.sh [DEST]          # DEST defaults to ~/.cache/telemarketer/cuda-13.0
#   eval "$(scripts/cuda_toolkit.sh --env)" # prints the exports for cargo
#   scripts/cuda_toolkit.sh --build         # assemble, then cargo build --release --features cuda
#                                           # (into target/cuda) and print the binary's --version
#
# Why CUDA 13: the CUDA 12 nvcc wheels carry ptxas and headers only (no nvcc, no cicc); the CUDA 13
# wheels are the whole compiler, and they install into one prefix (nvidia/cu13), which is a toolkit
# root once `lib64` and the unversioned library names exist.
#
# What differs from an installed toolkit, and what this script does about it:
# - No static cuBLAS in the wheels: llama-cpp-sys-2 asks for cublas_static/cublasLt_static/culibos.
#   Empty archives of those names satisfy that request, and our build.rs links the shared cuBLAS
#   instead when it finds this toolkit's marker file (TELEMARKETER_WHEEL_TOOLKIT).
# - No driver stub (libcuda.so): ggml's virtual-memory pool calls a few driver functions. A stub
#   with those symbols (their versioned names taken from cuda.h) and the driver's soname is built in
#   lib64/stubs, as in NVIDIA's toolkit; the real driver provides libcuda.so.1 at run time.
#
# - Not under /usr/local/cuda: llama-cpp-sys-2 finds the CUDA libraries it links (cudart_static
#   and the rest) through find_cuda_helper, which on Linux reads CUDA_LIBRARY_PATH (it adds lib64
#   and lib64/stubs), never CUDA_PATH; without it the link fails after llama.cpp has compiled.
#
# GPU architectures (CUDAARCHS): sm_80 code plus compute_80 PTX (A100, and by JIT A10/L4/L40S and
# newer), and sm_90 code (H100/H200). Each architecture more adds about half the CUDA compile time.
set -euo pipefail

ARCHS="${CUDAARCHS:-80;90-real}"
mode=assemble
case "${1:-}" in
--env) mode=env; shift ;;
--build) mode=build; shift ;;
-h | --help) sed -n '2,27p' "$0"; exit 0 ;;
esac
DEST="${1:-${HOME}/.cache/telemarketer/cuda-13.0}"
ROOT="$DEST/root"

exports() {
	cat <<EOF
export CUDA_PATH="$ROOT"
export CUDACXX="$ROOT/bin/nvcc"
export CUDAToolkit_ROOT="$ROOT"
export CUDA_LIBRARY_PATH="$ROOT"
export CUDAARCHS="$ARCHS"
export PATH="$ROOT/bin:\$PATH"
EOF
}

# name==version sha256 (of the manylinux x86_64 wheel)
WHEELS=(
	"nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
	"nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
	"nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
	"nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
	"nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
	"nvidia-cublas==13.0.2.14 0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c"
)

assemble() {
	if [[ -f "$ROOT/TELEMARKETER_WHEEL_TOOLKIT" ]]; then
		echo "toolkit ready: $ROOT" >&2
		return
	fi
	mkdir -p "$DEST/wheels"
	local req="$DEST/requirements.txt"
	: >"$req"
	for w in "${WHEELS[@]}"; do
		echo "${w% *} --hash=sha256:${w#* }" >>"$req"
	done
	echo "downloading the CUDA 13.0 wheels (about 530 MB, checked against pinned hashes)" >&2
	[[ "$(uname -m)" == x86_64 ]] || { echo "x86_64 Linux only (the pinned wheels)" >&2; exit 1; }
	python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
		-r "$req" -d "$DEST/wheels"
	local tmp="$DEST/unpack"
	rm -rf "$tmp" "$ROOT"
	mkdir -p "$tmp"
	for f in "$DEST"/wheels/*.whl; do
		python3 -m zipfile -e "$f" "$tmp"
	done
	mv "$tmp/nvidia/cu13" "$ROOT"
	rm -rf "$tmp"
	chmod +x "$ROOT"/bin/* "$ROOT"/nvvm/bin/* 2>/dev/null || true

	# The layout nvcc.profile, CMake's FindCUDAToolkit and find_cuda_helper look for.
	ln -sfn lib "$ROOT/lib64"
	(
		cd "$ROOT/lib"
		for so in libcudart libcublas libcublasLt; do
			ln -sfn "$(ls $so.so.* | head -1)" "$so.so"
		done
	)
	mkdir -p "$ROOT/lib/stubs"
	for a in cublas_static cublasLt_static culibos; do
		ar rcs "$ROOT/lib/stubs/lib$a.a"
	done

	# The driver stub: the driver functions ggml-cuda calls, under the names cuda.h maps them to.
	local fns="cuDeviceGet cuDeviceGetAttribute cuGetErrorString cuMemAddressFree cuMemAddressReserve
		cuMemCreate cuMemGetAllocationGranularity cuMemMap cuMemRelease cuMemSetAccess cuMemUnmap"
	{
		echo '#include <cuda.h>'
		for f in $fns; do echo "STUB $f"; done
	} | gcc -E -P -I"$ROOT/include" -x c - | sed -n 's/^STUB \(.*\)$/int \1(void) { return 999; }/p' \
		>"$DEST/cuda_stub.c"
	gcc -shared -fPIC -o "$ROOT/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$DEST/cuda_stub.c"

	"$ROOT/bin/nvcc" --version | tail -2 >"$ROOT/TELEMARKETER_WHEEL_TOOLKIT"
	echo "toolkit ready: $ROOT ($(tail -1 "$ROOT/TELEMARKETER_WHEEL_TOOLKIT"))" >&2
}

case "$mode" in
env) exports ;;
assemble) assemble; exports ;;
build)
	assemble
	eval "$(exports)"
	cd "$(dirname "$0")/.."
	# Its own target folder: switching the feature on and off would rebuild llama.cpp each time.
	export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
	start=$(date +%s)
	cargo build --release --features cuda
	secs=$(($(date +%s) - start))
	# No driver here: --version loads against the link stub under the driver's soname (kept out
	# of the toolkit, so that it can never shadow a real driver).
	mkdir -p "$DEST/verify-only"
	ln -sfn "$ROOT/lib/stubs/libcuda.so" "$DEST/verify-only/libcuda.so.1"
	version=$(LD_LIBRARY_PATH="$ROOT/lib:$DEST/verify-only" "$CARGO_TARGET_DIR/release/telemarketer" --version)
	echo "cuda build: ${secs} s, archs $CUDAARCHS; $version" >&2
	;;
esac
