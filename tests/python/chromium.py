"""Debian's Chromium for the browser tests: headless, offline (nothing it may fetch on its own),
autoplay allowed so agent audio plays without a click."""

CHROMIUM = "/usr/bin/chromium"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def launch(playwright, extra=()):
    """Chromium with FLAGS and `extra` (a fake microphone, say)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS + list(extra))
