#!/usr/bin/env bash
# The GPU release check, in one go, on a machine with an NVIDIA GPU and the models in models/
# (scripts/fetch_models.sh): builds with `cuda`, runs the model benches, runs `loadtest` at 1, 8,
# 32 and 64 calls while sampling GPU memory, and writes one table:
#
#   target/gpu_check/table.md      calls | caller p50/p95 | stage p50/p95 | llm | GPU MiB per call
#   target/gpu_check/*.txt         the raw outputs behind it
#
#   scripts/gpu_check.sh                      # CALLS="1 8 32 64" TURNS=4 by default
#   CALLS="1 2 4 8" scripts/gpu_check.sh --cpu   # the same table from the CPU build (no GPU needed)
#   SKIP_BENCH=1 ...                              # the loadtest table only
#   BIN=path/to/telemarketer scripts/gpu_check.sh  # a binary built elsewhere: no build, no bench
#                                                  # (a GPU box without a Rust toolchain)
#
# The build uses an installed CUDA toolkit when nvcc is on PATH (the CUDA devel image), else
# assembles one from NVIDIA's wheels (scripts/cuda_toolkit.sh). "Calls held" is the most calls
# whose caller-side p95 stayed under 700 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="${CALLS:-1 8 32 64}"
TURNS="${TURNS:-4}"
OUT="target/gpu_check"
mode=gpu
[[ "${1:-}" == "--cpu" ]] && mode=cpu
mkdir -p "$OUT"

if [[ $mode == gpu ]]; then
	command -v nvidia-smi >/dev/null || { echo "no NVIDIA GPU here (nvidia-smi missing); --cpu runs the CPU build" >&2; exit 1; }
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
fi
if [[ -n "${BIN:-}" ]]; then
	SKIP_BENCH=1
elif [[ $mode == gpu ]]; then
	if command -v nvcc >/dev/null; then
		CARGO_TARGET_DIR=target/cuda cargo build --release --features cuda
	else
		scripts/cuda_toolkit.sh --build
		eval "$(scripts/cuda_toolkit.sh --env)"
		export LD_LIBRARY_PATH="$CUDA_PATH/lib:${LD_LIBRARY_PATH:-}"
	fi
	BIN=target/cuda/release/telemarketer
	BENCH=(env CARGO_TARGET_DIR=target/cuda cargo bench --features cuda --bench models)
else
	cargo build --release
	BIN=target/release/telemarketer
	BENCH=(cargo bench --bench models)
fi
"$BIN" --version | tee "$OUT/version.txt"
grep -q cuda "$OUT/version.txt" || [[ $mode == cpu ]] || { echo "the binary has no cuda backend" >&2; exit 1; }

if [[ -z "${SKIP_BENCH:-}" ]]; then
	"${BENCH[@]}" >"$OUT/bench.txt" 2>&1 || { tail -20 "$OUT/bench.txt" >&2; exit 1; }
fi

sampler=""
# A failed loadtest exits the script: the memory sampler must not outlive it (it would hold
# the caller's pipe open, and the GPU busy).
trap '[[ -z "$sampler" ]] || kill "$sampler" 2>/dev/null || true' EXIT

echo "| calls | caller p50 | caller p95 | stages p50/p95 (ms) | llm | GPU MiB per call |" >"$OUT/table.md"
echo "|---|---|---|---|---|---|" >>"$OUT/table.md"
held=0 held_cpu=0
for n in $CALLS; do
	log="$OUT/loadtest_$n.txt"
	per_call="-"
	if [[ $mode == gpu ]]; then
		# The models load before the first call: memory at the first sample is the base.
		nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 >"$OUT/mem_$n.txt" 2>&1 </dev/null &
		sampler=$!
	fi
	"$BIN" loadtest --calls "$n" --turns "$TURNS" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
	if [[ $mode == gpu ]]; then
		kill "$sampler" 2>/dev/null || true
		sampler=""
		# Each run loads the models afresh: the first run's peak is the models plus its calls,
		# and every later run's growth over it is what its extra calls hold.
		peak=$(sort -n "$OUT/mem_$n.txt" | tail -1)
		if [[ -z "${first_peak:-}" ]]; then
			first_peak=$peak first_n=$n
			per_call="$peak in all"
		else
			per_call=$(awk -v p="$peak" -v b="$first_peak" -v n="$n" -v f="$first_n" \
				'BEGIN { printf "%.0f", (p - b) / (n - f) }')
		fi
	fi
	caller=$(grep -m1 'audio heard (caller)' "$log")
	p50=$(sed -n 's/.*p50 \([0-9]*\) ms.*/\1/p' <<<"$caller")
	p95=$(sed -n 's/.*p95 \([0-9]*\) ms.*/\1/p' <<<"$caller")
	stages=$(grep -m1 '^server stages' "$log" | sed 's/^server stages p50\/p95 ms: //')
	llm=$(grep -m1 '^llm (' "$log" | sed -n 's/.*, \([0-9]*\) tokens\/s while busy.*first token p50 \([0-9]*\) ms, p95 \([0-9]*\) ms.*/\1 tok\/s, first token \2\/\3 ms/p')
	echo "| $n | $p50 ms | $p95 ms | $stages | $llm | $per_call |" >>"$OUT/table.md"
	[[ -n "$p95" && "$p95" -lt 700 ]] && held=$n
	[[ -n "$p95" && "$p95" -lt 1500 ]] && held_cpu=$n
done
echo >>"$OUT/table.md"
echo "Calls held at caller p95 under 700 ms: $held (of $CALLS)" >>"$OUT/table.md"
echo "Calls held at caller p95 under 1500 ms (the CPU capacity rule): $held_cpu" >>"$OUT/table.md"
cat "$OUT/table.md"
