#!/usr/bin/env python3
"""The softphone in a real browser: Debian's Chromium, driven by Playwright for Python.

    python3 tests/python/softphone_browser.py BASE_URL CAMPAIGN_ID WAV OUT_DIR COOKIE

Chromium's fake microphone plays WAV (16-bit mono; Chrome loops it) into the page
BASE_URL/softphone?campaign=CAMPAIGN_ID; the script clicks #call ("Talk to this script") and
waits until #transcript shows a caller turn and an agent turn after it and until the page's
playback has echoed the greeting's end mark, then hangs up and saves OUT_DIR/softphone.png (also
on failure). Exits non-zero with the reason otherwise.

Needs `python3 -m pip install playwright` and /usr/bin/chromium (`apt-get install chromium`);
no browser is downloaded (`playwright install` is not needed).
"""

import os
import sys
import time

from playwright.sync_api import sync_playwright

from chromium import launch

# A call on a loaded two-core machine: greeting, the caller's words, Whisper, the answer.
DEADLINE_S = float(os.environ.get("SOFTPHONE_DEADLINE_S", "180"))


def fail(page, out_dir, why, logs):
    try:
        page.screenshot(path=os.path.join(out_dir, "softphone.png"), full_page=True)
    except Exception as e:  # the page may be gone
        print(f"no screenshot: {e}", file=sys.stderr)
    print("browser console:\n  " + "\n  ".join(logs[-40:]), file=sys.stderr)
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def turns(page):
    return page.eval_on_selector_all(
        "#transcript p.turn",
        "ps => ps.map(p => [p.classList.contains('caller') ? 'caller' : 'agent', p.textContent])",
    )


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    base, campaign, wav, out_dir, cookie = sys.argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    fake_microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    logs = []
    with sync_playwright() as p:
        browser = launch(p, fake_microphone)
        context = browser.new_context()
        # The console's login, done by the test: its session cookie.
        name, value = cookie.split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()
        page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
        page.goto(f"{base}/softphone?campaign={campaign}")
        page.wait_for_selector("#softphone #call", timeout=10_000)
        label = page.inner_text("#call")
        if label.strip() != "Talk to this script":
            fail(page, out_dir, f"#call reads {label!r}", logs)
        page.click("#call")
        started = time.monotonic()
        answered = None
        while time.monotonic() - started < DEADLINE_S:
            seen = turns(page)
            callers = [i for i, (who, text) in enumerate(seen) if who == "caller" and text.strip()]
            if callers and any(
                who == "agent" and text.strip() for who, text in seen[callers[0] + 1 :]
            ):
                answered = seen
                break
            if page.inner_text("#call").strip() != "Hang up":
                fail(page, out_dir, f"the call ended: {page.inner_text('#status')!r}; {seen}", logs)
            time.sleep(0.5)
        if answered is None:
            fail(
                page,
                out_dir,
                f"no caller turn answered by the agent within {DEADLINE_S:.0f} s: {turns(page)}; "
                f"status {page.inner_text('#status')!r}",
                logs,
            )
        call_sid = page.get_attribute("#softphone", "data-call-sid")
        # The page's playback reached the greeting's end mark and echoed it: the server knows
        # the greeting was heard (its first turn has an end).
        heard = None
        while time.monotonic() - started < DEADLINE_S:
            heard = page.evaluate(
                """async (sid) => {
                    const r = await fetch('/softphone/transcript/' + sid, {cache: 'no-store'});
                    const t = (await r.json()).turns || [];
                    return t.length > 0 && t[0].end_ms !== undefined;
                }""",
                call_sid,
            )
            if heard:
                break
            time.sleep(0.5)
        if not heard:
            fail(page, out_dir, "the greeting's end mark never came back from the page", logs)
        page.screenshot(path=os.path.join(out_dir, "softphone.png"), full_page=True)
        page.click("#call")
        page.wait_for_function(
            "document.querySelector('#call').textContent === 'Talk to this script'",
            timeout=10_000,
        )
        browser.close()
    for who, text in answered:
        print(f"{who}: {text}")
    print(f"OK {call_sid} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
