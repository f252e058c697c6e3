#!/usr/bin/env python3
"""Cross-check of our Twilio emulator against the official `twilio` Python library.

Starts `telemarketer emulator` (no models needed: its callers only listen or are busy), then:
- places calls with twilio-python's REST `Client` pointed at the emulator (`client.api.base_url`),
  so the emulator must accept the official client's requests and answer in shapes it parses;
- receives the emulator's voice webhook and status callbacks on a local HTTP server and checks
  every `X-Twilio-Signature` with twilio-python's `RequestValidator`;
- answers the voice webhook with TwiML built by twilio-python's `VoiceResponse`;
- hangs up a call through `client.calls(sid).update(status="completed")` and lists calls.

    python3 -m venv /tmp/tw && /tmp/tw/bin/pip install twilio
    /tmp/tw/bin/python tests/python/emulator_crosscheck.py target/release/telemarketer

Exits non-zero on the first disagreement.
"""

import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

ACCOUNT = "AC" + "0" * 31 + "9"
TOKEN = "crosscheck-token"
BUSY = "+14155550102"
HUMAN = "+14155550103"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


received = []  # (path, params, signature_ok)
lock = threading.Lock()


class Hooks(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        params = {}
        for k, v in urllib.parse.parse_qsl(body, keep_blank_values=True):
            params.setdefault(k, v)
        url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        ok = RequestValidator(TOKEN).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        with lock:
            received.append((self.path.split("?")[0], params, ok))
        if self.path.startswith("/voice"):
            r = VoiceResponse()
            r.pause(length=1)
            r.hangup()
            xml = str(r).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)
        else:
            self.send_response(204)
            self.end_headers()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/telemarketer"
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    hook_base = f"http://127.0.0.1:{hooks.server_port}"

    port = free_port()
    scenario = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    scenario.write(f'ring_ms = 200\n[numbers."{BUSY}"]\nkind = "busy"\n')
    scenario.close()
    env = dict(os.environ, TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN, RUST_LOG="warn")
    emulator = subprocess.Popen(
        [binary, "emulator", "--listen", f"127.0.0.1:{port}", "--scenario", scenario.name],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("emulator did not start")
                time.sleep(0.2)

        client = Client(ACCOUNT, TOKEN)
        client.api.base_url = f"http://127.0.0.1:{port}"
        events = ["initiated", "ringing", "answered", "completed"]
        busy = client.calls.create(
            to=BUSY, from_="+15005550006", url=f"{hook_base}/voice",
            status_callback=f"{hook_base}/status?leg=busy", status_callback_event=events,
        )
        human = client.calls.create(
            to=HUMAN, from_="+15005550006", url=f"{hook_base}/voice?campaign=x&lead=1",
            status_callback=f"{hook_base}/status", status_callback_event=events,
            machine_detection="DetectMessageEnd",
        )
        assert busy.sid.startswith("CA") and len(busy.sid) == 34, busy.sid
        assert busy.status == "queued" and busy.direction == "outbound-api", (busy.status, busy.direction)
        assert human.to == HUMAN, human.to

        deadline = time.time() + 30
        while time.time() < deadline:
            with lock:
                done = [p for (path, p, _) in received if path == "/status" and p.get("CallStatus") in ("completed", "busy")]
            if len(done) >= 2:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"no terminal callbacks: {received}")

        with lock:
            bad = [(path, p) for (path, p, ok) in received if not ok]
            statuses = {}
            for path, p, _ in received:
                if path == "/status":
                    statuses.setdefault(p["CallSid"], []).append((int(p["SequenceNumber"]), p["CallStatus"]))
            voice = [p for (path, p, _) in received if path == "/voice"]
        assert not bad, f"RequestValidator rejected the emulator's signatures: {bad}"
        assert [s for _, s in sorted(statuses[busy.sid])] == ["initiated", "ringing", "busy"], statuses[busy.sid]
        assert [s for _, s in sorted(statuses[human.sid])] == ["initiated", "ringing", "in-progress", "completed"], statuses[human.sid]
        assert voice and voice[0]["AnsweredBy"] == "human", voice

        fetched = client.calls(human.sid).fetch()
        assert fetched.status == "completed", fetched.status
        listed = client.calls.list(to=BUSY)
        assert [c.sid for c in listed] == [busy.sid], listed
        # Hanging up a finished call through the official client: Twilio's error shape.
        try:
            client.calls(human.sid).update(status="completed")
        except Exception as e:  # TwilioRestException
            assert getattr(e, "code", None) in (20404, 21220), e
        print(f"emulator cross-check ok: {len(received)} signed webhooks validated by RequestValidator")
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
        hooks.shutdown()


if __name__ == "__main__":
    main()
