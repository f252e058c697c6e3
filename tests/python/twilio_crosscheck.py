#!/usr/bin/env python3
"""Cross-check of src/twilio against the official `twilio` Python library.

Prints, as JSON, the X-Twilio-Signature that twilio-python's RequestValidator computes for a fixed
set of requests (repeated keys, non-ASCII, ports, a JSON body), and the TwiML that its
VoiceResponse builds for `<Connect><Stream>` with `<Parameter>`s and for a transfer's
`<Dial action timeout><Number url>`. The Rust unit tests in
src/twilio/signature.rs and src/twilio/twiml.rs pin these outputs as constants, so this script is
only needed to regenerate or re-verify them:

    python3 -m venv /tmp/tw && /tmp/tw/bin/pip install twilio
    /tmp/tw/bin/python tests/python/twilio_crosscheck.py            # all fixed cases
    /tmp/tw/bin/python tests/python/twilio_crosscheck.py sign TOKEN URL k=v k=v2 ...
    /tmp/tw/bin/python tests/python/twilio_crosscheck.py twiml WSS_URL [--hangup] k=v ...

Needs only the standard library and the `twilio` package.
"""

import hashlib
import json
import sys
import xml.etree.ElementTree as ET

import twilio
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse


class MultiDict(dict):
    """name -> [values]; `getall` is what RequestValidator uses for repeated form keys (Flask)."""

    @classmethod
    def from_pairs(cls, pairs):
        d = cls()
        for name, value in pairs:
            d.setdefault(name, []).append(value)
        return d

    def getall(self, name):
        return self[name]


OFFICIAL = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"

SIGNATURE_CASES = [
    ("official", "12345", URL, OFFICIAL),
    ("official_port", "12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", OFFICIAL),
    (
        "repeated_keys",
        "12345",
        "https://example.test/twilio/status",
        [
            ("CallSid", "CA0123456789abcdef0123456789abcdef"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "initiated"),
            ("Digits", "1"),
            ("Digits", "1"),  # a repeated value counts once
            ("Digits", "0"),
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
        ],
    ),
    (
        "non_ascii",
        "f00dfacecafebabe0123456789abcdef",
        "https://example.test/twilio/voice?lead=J%C3%BCrgen",
        [
            ("CallerName", "Jürgen Müller"),
            ("SpeechResult", "Grüße aus 東京 🚀"),
            ("Nämé", "x"),
            ("Emoji", "\U0001F680"),
            ("Emoji", "\uFFFD"),  # code-point order, not UTF-16 order
            ("a", "lower"),
            ("B", "upper"),
            ("Empty", ""),
        ],
    ),
    ("no_params_http_port", "secret", "http://10.0.0.5:8080/twilio/voice", []),
]

JSON_BODY = '{"property": "value", "boolean": true}'

# (case, url, params, hangup, what src/twilio/twiml.rs `connect_stream` returns for it)
TWIML_CASES = [
    (
        "simple",
        "wss://host/twilio/media",
        [("lead_id", "42")],
        False,
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://host/twilio/media">'
        '<Parameter name="lead_id" value="42"/></Stream></Connect></Response>',
    ),
    (
        "hangup_no_params",
        "wss://h/m",
        [],
        True,
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m"/></Connect>'
        "<Hangup/></Response>",
    ),
    (
        "escaping",
        "wss://h/m?a=1&b=2",
        [("name", "Tom & \"Jerry\" <3 O'Neil >"), ("line", "a\nb\tc"), ("uni", "Jürgen 🚀")],
        True,
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m?a=1&amp;b=2">'
        '<Parameter name="name" value="Tom &amp; &quot;Jerry&quot; &lt;3 O&apos;Neil &gt;"/>'
        '<Parameter name="line" value="a&#10;b&#9;c"/><Parameter name="uni" value="Jürgen 🚀"/>'
        "</Stream></Connect><Hangup/></Response>",
    ),
]


# (case, number, timeout, action, whisper url, what src/twilio/twiml.rs `dial` returns for it)
DIAL_CASES = [
    (
        "warm",
        "+14155550199",
        20,
        "https://h/twilio/transfer?handoff=ab&x=1",
        "https://h/twilio/whisper?handoff=ab",
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h/twilio/transfer?handoff=ab&amp;x=1" '
        'timeout="20"><Number url="https://h/twilio/whisper?handoff=ab">+14155550199</Number></Dial></Response>',
    ),
    (
        "cold",
        "+14155550199",
        5,
        "https://h/t",
        None,
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h/t" timeout="5">'
        "<Number>+14155550199</Number></Dial></Response>",
    ),
]


def dial(number, timeout, action, whisper):
    response = VoiceResponse()
    d = response.dial(action=action, timeout=timeout)
    if whisper is None:
        d.number(number)
    else:
        d.number(number, url=whisper)
    return response.to_xml()


def sign(token, url, pairs):
    return RequestValidator(token).compute_signature(url, MultiDict.from_pairs(pairs))


def connect_stream(url, params, hangup):
    response = VoiceResponse()
    stream = response.connect().stream(url=url)
    for name, value in params:
        stream.parameter(name=name, value=value)
    if hangup:
        response.hangup()
    return response.to_xml()


def tree(xml):
    """(tag, sorted attributes, text, children): what a TwiML consumer sees, minus spelling."""

    def walk(el):
        return (el.tag, sorted(el.attrib.items()), el.text or "", [walk(c) for c in el])

    return walk(ET.fromstring(xml.encode("utf-8")))


def pairs_from_args(args):
    return [tuple(a.split("=", 1)) for a in args]


def main(argv):
    if argv[:1] == ["sign"]:
        print(json.dumps(sign(argv[1], argv[2], pairs_from_args(argv[3:]))))
        return
    if argv[:1] == ["twiml"]:
        hangup = "--hangup" in argv
        rest = [a for a in argv[2:] if a != "--hangup"]
        print(connect_stream(argv[1], pairs_from_args(rest), hangup))
        return
    validator = RequestValidator("12345")
    body_hash = validator.compute_hash(JSON_BODY)
    assert body_hash == hashlib.sha256(JSON_BODY.encode()).hexdigest()
    json_url = URL + "&bodySHA256=" + body_hash
    out = {
        "twilio_version": twilio.__version__,
        "signatures": [
            {"case": c, "token": t, "url": u, "params": p, "signature": sign(t, u, p)}
            for c, t, u, p in SIGNATURE_CASES
        ],
        "json_body": {
            "body": JSON_BODY,
            "sha256": body_hash,
            "url": json_url,
            "signature": validator.compute_signature(json_url, {}),
            "validates": validator.validate(
                json_url, JSON_BODY, validator.compute_signature(json_url, {})
            ),
        },
        # How the library treats ports: it tries the URL with the port removed and with the
        # scheme's default port added.
        "port_validation": {
            "signed_without_port_received_with_443": validator.validate(
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                MultiDict.from_pairs(OFFICIAL),
                sign("12345", URL, OFFICIAL),
            ),
            "signed_with_443_received_without": validator.validate(
                URL,
                MultiDict.from_pairs(OFFICIAL),
                sign("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", OFFICIAL),
            ),
            "signed_without_port_received_with_8443": validator.validate(
                "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
                MultiDict.from_pairs(OFFICIAL),
                sign("12345", URL, OFFICIAL),
            ),
        },
        "twiml": [
            {
                "case": c,
                "url": u,
                "params": p,
                "hangup": h,
                "xml": connect_stream(u, p, h),
                "same_tree_as_ours": tree(connect_stream(u, p, h)) == tree(ours),
                "same_bytes_as_ours": connect_stream(u, p, h) == ours,
            }
            for c, u, p, h, ours in TWIML_CASES
        ],
        "dial": [
            {
                "case": c,
                "xml": dial(n, t, a, w),
                "same_bytes_as_ours": dial(n, t, a, w) == ours,
            }
            for c, n, t, a, w, ours in DIAL_CASES
        ],
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if not all(t["same_tree_as_ours"] for t in out["twiml"]):
        sys.exit("TwiML from src/twilio/twiml.rs differs in structure from twilio-python's")
    if not all(t["same_bytes_as_ours"] for t in out["dial"]):
        sys.exit("<Dial> from src/twilio/twiml.rs differs from twilio-python's")


if __name__ == "__main__":
    main(sys.argv[1:])
