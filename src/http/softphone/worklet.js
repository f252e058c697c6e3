// The softphone's audio thread (AudioWorklet), in an AudioContext running at 8 kHz: the
// browser resamples the microphone to the phone line's rate and the agent's 8 kHz PCM back.
//
// softphone-capture: microphone -> 160-sample frames (20 ms) of 16-bit little-endian PCM,
//   posted to the main thread, which sends them on the WebSocket as they are.
// softphone-playback: a queue of PCM chunks and marks. A mark is posted back when playback
//   reaches it (the audio before it has been rendered), so the server learns what was heard;
//   `clear` drops the queue at once (barge-in) and posts the pending marks, as Twilio does.
'use strict';

const FRAME = 160;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const s = Math.max(-1, Math.min(1, input[i]));
      this.frame[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === FRAME) {
        const bytes = new ArrayBuffer(FRAME * 2);
        const view = new DataView(bytes);
        for (let j = 0; j < FRAME; j++) view.setInt16(j * 2, this.frame[j], true);
        this.port.postMessage(bytes, [bytes]);
        this.filled = 0;
      }
    }
    return true;
  }
}

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    // Items: {pcm: Float32Array, at: next sample} or {mark: name}.
    this.queue = [];
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.pcm) {
        const view = new DataView(m.pcm);
        const pcm = new Float32Array(view.byteLength >> 1);
        for (let i = 0; i < pcm.length; i++) pcm[i] = view.getInt16(i * 2, true) / 32768;
        this.queue.push({ pcm, at: 0 });
      } else if (m.mark !== undefined) {
        this.queue.push({ mark: m.mark });
        this.flushMarks();
      } else if (m.clear) {
        for (const item of this.queue) {
          if (item.mark !== undefined) this.port.postMessage({ mark: item.mark });
        }
        this.queue = [];
      }
    };
  }

  // Marks at the head of the queue have been reached: everything before them has played.
  flushMarks() {
    while (this.queue.length && this.queue[0].mark !== undefined) {
      this.port.postMessage({ mark: this.queue.shift().mark });
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let n = 0;
    while (n < out.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        this.flushMarks();
        continue;
      }
      const take = Math.min(out.length - n, head.pcm.length - head.at);
      out.set(head.pcm.subarray(head.at, head.at + take), n);
      head.at += take;
      n += take;
      if (head.at >= head.pcm.length) this.queue.shift();
    }
    out.fill(0, n);
    this.flushMarks();
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

registerProcessor('softphone-capture', Capture);
registerProcessor('softphone-playback', Playback);
