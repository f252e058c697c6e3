#!/usr/bin/env bash
# Tests the default (Hugging Face) profile of fetch_models.sh offline: a local HTTP server with
# Range support serves small fake files in Hugging Face's URL layout (/{repo}/resolve/{rev}/{file}).
# Checks: canonical names, a second run downloads nothing, a corrupted file fails loudly and
# leaves nothing at the canonical name, an interrupted download resumes.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
passed=0; failed=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }

root="$work/www"; repo="acme/models/resolve/main"
mkdir -p "$root/$repo"
for f in stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so; do
  head -c 300000 /dev/urandom > "$root/$repo/$f"
done
pins="$work/pins.tsv"
for f in stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so; do
  printf '%s\t%s\t%s\n' "$f" "$repo/$f" "$(sha256sum "$root/$repo/$f" | cut -d' ' -f1)"
done > "$pins"

# A stdlib HTTP server that honours Range (python's http.server does not) and logs each GET.
cat > "$work/server.py" <<'PY'
import http.server, os, re, sys
root, log = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        if not os.path.isfile(path):
            self.send_error(404); return
        data = open(path, "rb").read()
        start = 0
        m = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        with open(log, "a") as f:
            f.write(f"{self.path} {self.headers.get('Range', '-')}\n")
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416); self.send_header("Content-Range", f"bytes */{len(data)}"); self.end_headers(); return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/server.py" "$root" "$work/access.log" > "$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port="$(cat "$work/port")"
export HF_BASE_URL="http://127.0.0.1:$port"
fetch() { "$here/fetch_models.sh" --dir "$work/models" --pins "$pins" "$@"; }

# 1. First run: every file lands under its canonical name, verified.
if fetch > "$work/out1" 2>&1; then ok "first run succeeds"; else bad "first run failed: $(cat "$work/out1")"; fi
all=1
for f in stt.bin llm.gguf tts.onnx tts.onnx.json libonnxruntime.so; do
  cmp -s "$root/$repo/$f" "$work/models/$f" || all=0
done
[ "$all" = 1 ] && ok "canonical names with the served bytes" || bad "files missing or different"
grep -q "^default$" "$work/models/PROFILE" && ok "PROFILE written" || bad "PROFILE missing"

# 2. Second run: no download at all.
: > "$work/access.log"
if fetch > "$work/out2" 2>&1 && [ ! -s "$work/access.log" ] && grep -q "all models present" "$work/out2"; then
  ok "second run does no work"
else
  bad "second run downloaded: $(cat "$work/access.log")"
fi

# 3. Corruption on the server: loud failure, nothing at the canonical name.
rm -f "$work/models/llm.gguf" "$work/models/.verified/llm.gguf"
head -c 300000 /dev/urandom > "$root/$repo/llm.gguf"
if fetch > "$work/out3" 2>&1; then bad "corrupted download accepted"; else
  grep -q "checksum mismatch for llm.gguf" "$work/out3" && ok "checksum mismatch fails loudly" || bad "wrong error: $(cat "$work/out3")"
fi
[ ! -e "$work/models/llm.gguf" ] && ok "no corrupted file at the canonical name" || bad "corrupted file installed"

# 4. Resume: a .part with the first bytes is continued with a Range request, not restarted.
cp "$root/$repo/tts.onnx" "$root/$repo/llm.gguf"
sed -i "s|^llm.gguf\t.*|llm.gguf\t$repo/llm.gguf\t$(sha256sum "$root/$repo/llm.gguf" | cut -d' ' -f1)|" "$pins"
head -c 100000 "$root/$repo/llm.gguf" > "$work/models/llm.gguf.part"
: > "$work/access.log"
if fetch > "$work/out4" 2>&1 && cmp -s "$root/$repo/llm.gguf" "$work/models/llm.gguf"; then ok "resumed download verifies"; else bad "resume failed: $(cat "$work/out4")"; fi
grep -q "llm.gguf bytes=100000-" "$work/access.log" && ok "resume used a Range request" || bad "no range request: $(cat "$work/access.log")"

# 5. Bad usage is exit code 2.
"$here/fetch_models.sh" --profile nope > /dev/null 2>&1; [ $? = 2 ] && ok "bad profile is a usage error" || bad "bad profile exit code"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
