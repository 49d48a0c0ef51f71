// The microphone as 24 kHz mono PCM16 (the realtime API's format): getUserMedia → an AudioWorklet that hands
// blocks to this thread → resampled here when the browser would not open a 24 kHz AudioContext.

export const RATE = 24000;

/** Streaming linear-interpolation resampler (joined output = one-shot output). */
export class Resampler {
  constructor(from, to) {
    this.step = from / to;
    this.prev = 0;
    this.t = 1; // position of the next output; index 0 is the previous block's last sample
  }

  push(x) {
    if (this.step === 1) return x;
    const out = [];
    const n = x.length;
    while (this.t < n) {
      const i = Math.floor(this.t);
      const f = this.t - i;
      const a = i === 0 ? this.prev : x[i - 1];
      out.push(a + (x[i] - a) * f);
      this.t += this.step;
    }
    this.t -= n;
    if (n) this.prev = x[n - 1];
    return Float32Array.from(out);
  }
}

export function toPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return out;
}

/** A WAV file (PCM16 mono) of `chunks` (Int16Arrays) at `rate` Hz. */
export function wavBlob(chunks, rate) {
  const samples = chunks.reduce((n, c) => n + c.length, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => [...s].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVEfmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, samples * 2, true);
  return new Blob([header, ...chunks], { type: "audio/wav" });
}

export class Microphone {
  /** Start capturing; `onChunk(Int16Array)` gets 24 kHz PCM16 blocks as they come. */
  async start(onChunk) {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
    try {
      this.context = new AudioContext({ sampleRate: RATE });
      this.source = this.context.createMediaStreamSource(this.stream);
    } catch {
      // a browser that cannot resample a microphone into a 24 kHz context: capture at its rate
      await this.context?.close();
      this.context = new AudioContext();
      this.source = this.context.createMediaStreamSource(this.stream);
    }
    await this.context.audioWorklet.addModule(new URL("capture-worklet.js", import.meta.url));
    this.node = new AudioWorkletNode(this.context, "pcm-capture", { numberOfOutputs: 1 });
    this.resampler = new Resampler(this.context.sampleRate, RATE);
    this.flushed = null;
    this.node.port.onmessage = (event) => {
      const pcm = toPcm16(this.resampler.push(event.data.samples));
      if (pcm.length) onChunk(pcm);
      if (event.data.last) this.flushed?.();
    };
    // the worklet only runs while the graph pulls it: connect it to the output through a silent gain
    const silent = this.context.createGain();
    silent.gain.value = 0;
    this.source.connect(this.node).connect(silent).connect(this.context.destination);
    if (this.context.state === "suspended") await this.context.resume();
  }

  /** Stop capturing; the last partial block is delivered before this resolves. */
  async stop() {
    for (const track of this.stream?.getTracks() || []) track.stop();
    if (!this.context) return;
    if (this.node) await new Promise((resolve) => {
      const timer = setTimeout(resolve, 500);
      this.flushed = () => {
        clearTimeout(timer);
        resolve();
      };
      this.node.port.postMessage("flush");
    });
    if (this.node) this.node.port.onmessage = null;
    await this.context.close();
    this.context = null;
  }
}
