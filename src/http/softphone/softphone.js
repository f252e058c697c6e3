// The browser softphone: talk to a campaign's script from the microphone, through the same
// session a phone call runs. Renders into <div id="softphone" data-campaign="<id>">:
// a #call button, a #status line, a keypad and the live #transcript.
//
// Wire (see src/call/browser.rs): binary = 16-bit little-endian PCM at 8 kHz both ways;
// server -> browser text: {"event":"call","call_sid"}, {"event":"mark","name"},
// {"event":"clear"}; browser -> server text: {"event":"mark","name"} once that point has
// played, {"event":"dtmf","digit"}, {"event":"hangup"}.
(() => {
  'use strict';

  // Where this script was served from: the WebSocket, worklet and transcript sit beside it
  // (so the console may live under a path prefix).
  const base = new URL('.', document.currentScript ? document.currentScript.src : location.href);
  const POLL_MS = 500;
  // After the socket closes, the caller's last words may still be transcribed.
  const POLL_AFTER_END_MS = 15000;

  let call = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function mount(root) {
    if (root.dataset.mounted) return;
    root.dataset.mounted = '1';
    const button = el('button', { id: 'call', type: 'button' }, 'Talk to this script');
    const status = el('p', { id: 'status', role: 'status' }, 'Ready');
    const keypad = el('div', { id: 'keypad' });
    for (const key of '123456789*0#') {
      const k = el('button', { type: 'button', 'data-digit': key, disabled: '' }, key);
      k.addEventListener('click', () => dtmf(key));
      keypad.appendChild(k);
    }
    const transcript = el('div', { id: 'transcript', 'aria-live': 'polite' });
    root.append(button, status, keypad, transcript);
    button.addEventListener('click', () => (call ? hangup() : start(root)));
  }

  function ui(root) {
    return {
      button: root.querySelector('#call'),
      status: root.querySelector('#status'),
      keys: root.querySelectorAll('#keypad button'),
      transcript: root.querySelector('#transcript'),
    };
  }

  function setStatus(root, text) {
    ui(root).status.textContent = text;
  }

  async function start(root) {
    const { button, keys, transcript } = ui(root);
    const campaign = root.dataset.campaign || '';
    const c = { root, ws: null, ctx: null, mic: null, sid: null, poll: null, ended: false };
    call = c;
    button.textContent = 'Hang up';
    transcript.replaceChildren();
    setStatus(root, 'Starting the microphone…');
    try {
      c.ctx = new AudioContext({ sampleRate: 8000, latencyHint: 'interactive' });
      await c.ctx.audioWorklet.addModule(new URL('worklet.js', base));
      c.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (e) {
      end(c, 'Microphone unavailable: ' + e.message);
      return;
    }
    if (c.ended) {
      // Hung up while the microphone was starting.
      c.mic.getTracks().forEach((t) => t.stop());
      return;
    }
    const url = new URL('ws', base);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (campaign) url.searchParams.set('campaign', campaign);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    c.ws = ws;
    setStatus(root, 'Connecting…');

    const source = c.ctx.createMediaStreamSource(c.mic);
    const capture = new AudioWorkletNode(c.ctx, 'softphone-capture');
    const playback = new AudioWorkletNode(c.ctx, 'softphone-playback');
    // The capture node must be pulled by the graph to run; it outputs nothing audible.
    const mute = c.ctx.createGain();
    mute.gain.value = 0;
    source.connect(capture).connect(mute).connect(c.ctx.destination);
    playback.connect(c.ctx.destination);
    c.playback = playback;

    capture.port.onmessage = (e) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(e.data);
    };
    playback.port.onmessage = (e) => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: 'mark', name: e.data.mark }));
      }
    };
    ws.onopen = () => {
      setStatus(root, 'Connected: speak as the caller would');
      keys.forEach((k) => k.removeAttribute('disabled'));
    };
    ws.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) {
        playback.port.postMessage({ pcm: e.data }, [e.data]);
        return;
      }
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      if (m.event === 'mark') playback.port.postMessage({ mark: m.name });
      else if (m.event === 'clear') playback.port.postMessage({ clear: true });
      else if (m.event === 'call') {
        c.sid = m.call_sid;
        root.dataset.callSid = m.call_sid;
        poll(c);
      }
    };
    ws.onerror = () => {
      if (!c.sid) setStatus(root, 'Could not connect (unknown campaign, too many calls, or not allowed)');
    };
    ws.onclose = () => end(c, c.sid ? 'Call ended' : ui(root).status.textContent);
  }

  function dtmf(digit) {
    if (call && call.ws && call.ws.readyState === WebSocket.OPEN) {
      call.ws.send(JSON.stringify({ event: 'dtmf', digit }));
    }
  }

  function hangup() {
    if (!call) return;
    const c = call;
    if (c.ws && c.ws.readyState === WebSocket.OPEN) {
      c.ws.send(JSON.stringify({ event: 'hangup' }));
      c.ws.close();
    }
    end(c, 'Call ended');
  }

  // Releases the microphone and audio at once; the transcript keeps updating a while.
  function end(c, text) {
    if (c.ended) return;
    c.ended = true;
    if (call === c) call = null;
    const { button, keys } = ui(c.root);
    button.textContent = 'Talk to this script';
    keys.forEach((k) => k.setAttribute('disabled', ''));
    setStatus(c.root, text);
    if (c.mic) c.mic.getTracks().forEach((t) => t.stop());
    if (c.ctx) c.ctx.close().catch(() => {});
    if (c.ws && c.ws.readyState <= WebSocket.OPEN) c.ws.close();
    c.endedAt = Date.now();
  }

  async function poll(c) {
    if (c.poll) return;
    c.poll = true;
    while (!c.ended || Date.now() - c.endedAt < POLL_AFTER_END_MS) {
      try {
        const r = await fetch(new URL('transcript/' + encodeURIComponent(c.sid), base), {
          cache: 'no-store',
          credentials: 'same-origin',
        });
        if (r.ok) {
          const record = await r.json();
          render(c.root, record.turns || []);
          if (c.ended && record.status !== 'in-progress' && record.status !== 'registered') break;
        } else if (r.status === 404) {
          break;
        }
      } catch (_) {
        // The next poll tries again.
      }
      await new Promise((done) => setTimeout(done, POLL_MS));
    }
  }

  // One <p class="turn agent|caller"> per turn; text only (the caller's words are data).
  function render(root, turns) {
    const box = ui(root).transcript;
    while (box.children.length > turns.length) box.lastChild.remove();
    turns.forEach((t, i) => {
      let p = box.children[i];
      if (!p) {
        p = el('p');
        box.appendChild(p);
      }
      const cls = 'turn ' + (t.speaker === 'caller' ? 'caller' : 'agent') + (t.interrupted ? ' interrupted' : '');
      if (p.className !== cls) p.className = cls;
      if (p.textContent !== t.text) p.textContent = t.text;
    });
  }

  window.softphone = {
    mount,
    start: () => {
      const root = document.getElementById('softphone');
      if (root && !call) start(root);
    },
    hangup,
    dtmf,
    get callSid() {
      return call ? call.sid : null;
    },
  };

  function boot() {
    const root = document.getElementById('softphone');
    if (root) mount(root);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
