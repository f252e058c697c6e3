"""The operator console in real headless Chromium (Playwright for Python, Debian's chromium).

Usage: console_browser.py BASE_URL USER PASSWORD LEADS_CSV SCREENSHOT_DIR LEAD_PHONE

Driven by tests/console.rs (which starts the appliance and the Twilio emulator and checks the
store afterwards). Exits non-zero with the step that failed.
"""

import re
import sys
import time

from playwright.sync_api import expect, sync_playwright

from chromium import launch

BASE, USER, PASSWORD, CSV, SHOTS, PHONE = sys.argv[1:7]


def step(name):
    print(f"== {name}", flush=True)


def shot(page, name):
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def main():
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)

        step("a page without a session goes to the login")
        page.goto(f"{BASE}/campaigns")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        shot(page, "login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        expect(page.locator("p.error")).to_contain_text("Wrong user name or password")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{BASE}/campaigns")
        expect(page.locator("h1")).to_have_text("Campaigns")

        step("create a campaign: a bad setting is shown at its field, nothing typed is lost")
        page.fill("input[name=id]", "spring")
        page.fill("input[name=name]", "Spring solar")
        page.fill("input[name=from_number]", "+14155550100")
        page.fill("input[name=max_concurrent]", "0")
        page.uncheck("input[name=machine_detection]")
        page.check("input[name=recording]")
        page.click("form.create button[type=submit]")
        err = page.locator("label:has(input[name=max_concurrent]) .field-error")
        expect(err).to_contain_text("max_concurrent must be 1..=1000")
        expect(page.locator("input[name=name]")).to_have_value("Spring solar")
        shot(page, "campaign-error")
        page.fill("input[name=max_concurrent]", "1")
        page.click("form.create button[type=submit]")
        expect(page).to_have_url(re.compile(r"/campaigns/spring"))
        expect(page.locator("p.ok")).to_contain_text("created")
        expect(page.locator("p.settings")).to_contain_text("recording on")

        step("import a CSV with one bad row: the row error is listed, the good row imported")
        page.set_input_files("form.import input[type=file]", CSV)
        page.click("form.import button[type=submit]")
        expect(page.locator("section.import-report p.ok")).to_contain_text("1 imported")
        expect(page.locator("table.row-errors tbody tr")).to_have_count(1)
        expect(page.locator("table.row-errors")).to_contain_text("3")
        expect(page.locator("table.leads tbody tr")).to_have_count(1)
        shot(page, "import")

        step("start it against the emulator")
        page.click("button[value=start]")
        expect(page.locator("p.ok")).to_contain_text("started")
        expect(page.locator(".summary .state")).to_have_text("running")
        shot(page, "campaign")

        step("the live call's transcript appears as it happens")
        page.goto(f"{BASE}/live")
        call = page.locator(".live-call").first
        expect(call).to_be_visible(timeout=30_000)
        expect(call.locator(".live-turn.agent").first).to_be_visible(timeout=30_000)
        expect(call.locator(".live-turn.caller").first).to_be_visible(timeout=30_000)
        expect(call.locator("button.hangup")).to_be_visible()
        shot(page, "live")
        expect(page.locator(".live-call")).to_have_count(0, timeout=90_000)

        step("the finished record: transcript, outcome, recording that plays")
        page.goto(f"{BASE}/calls?phone={PHONE.replace('+', '%2B')}")
        rows = page.locator("table.calls tbody tr a")
        expect(rows).to_have_count(1)
        rows.first.click()
        expect(page.locator("dd.outcome")).to_have_text("not_interested", timeout=30_000)
        expect(page.locator("ol.transcript li.turn.caller").first).to_be_visible()
        expect(page.locator("ol.transcript")).to_contain_text("automated")
        audio = page.locator("audio#recording")
        expect(audio).to_have_count(1)
        played = page.evaluate(
            """async () => {
                const a = document.getElementById('recording');
                a.muted = true;
                await a.play();
                await new Promise(r => setTimeout(r, 1500));
                return {t: a.currentTime, d: a.duration, err: a.error && a.error.code};
            }"""
        )
        print("recording", played, flush=True)
        if not (played["t"] > 0.5 and played["d"] > 2 and not played["err"]):
            raise AssertionError(f"the recording did not play: {played}")
        shot(page, "record")

        step("do-not-call: add a number, then remove it with a reason")
        page.goto(f"{BASE}/dnc")
        page.fill("form.add input[name=phone]", "(415) 555-0199")
        page.fill("form.add input[name=reason]", "asked by email")
        page.click("form.add button[type=submit]")
        row = page.locator("tr[data-phone='+14155550199']")
        expect(row).to_have_count(1)
        expect(page.locator("table.changes")).to_contain_text("dnc_add")
        shot(page, "dnc")
        row.locator("input[name=reason]").fill("added by mistake")
        row.locator("button[type=submit]").click()
        expect(page.locator("tr[data-phone='+14155550199']")).to_have_count(0)
        expect(page.locator("table.changes")).to_contain_text("dnc_remove")
        with page.expect_download() as dl:
            page.click("a[href='/dnc.csv']")
        if "phone,reason" not in open(dl.value.path()).read():
            raise AssertionError("the export has no header")

        step("scripts: a broken script is refused with the problem at its line")
        page.goto(f"{BASE}/scripts/spring")
        expect(page.locator("svg.graph g.node").first).to_be_visible()
        text = page.locator("textarea[name=script]").input_value()
        broken = text.replace('next = "', 'next = "nowhere_', 1)
        page.fill("textarea[name=script]", broken)
        page.click("form.script button[type=submit]")
        expect(page.locator("section.problems")).to_contain_text("Not saved")
        expect(page.locator("ol.listing li.bad").first).to_be_visible()
        shot(page, "script-error")
        page.fill("textarea[name=script]", text.replace("Nova", "Nora"))
        page.click("form.script button[type=submit]")
        expect(page.locator("p.ok")).to_contain_text("Script saved")

        step("chat with the script")
        page.fill("form.chat input[name=say]", "Hi, who is this?")
        page.click("form.chat button[type=submit]")
        expect(page.locator("#chat .line.caller")).to_contain_text("who is this")
        expect(page.locator("#chat")).to_contain_text("This is Nora, an automated assistant")
        shot(page, "script")

        step("log out")
        page.click("form.logout button")
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(f"{BASE}/campaigns")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        browser.close()
    print("console browser run: ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the step printed above says where
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
