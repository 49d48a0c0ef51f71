// Raw PCM from a streamed response into Web Audio as it arrives: each piece becomes an AudioBuffer scheduled
// right after the previous one on the AudioContext's clock, so playback starts with the first bytes.

const LEAD_SECONDS = 0.12; // jitter buffer before the first piece (and after an underrun)

/** `audio/pcm;rate=24000;channels=1;encoding=s16le` → {rate, encoding}; `fallbackRate` when absent. */
export function pcmParams(contentType, fallbackRate) {
  const rate = /(?:^|;)\s*rate=(\d+)/i.exec(contentType || "");
  const encoding = /(?:^|;)\s*encoding=([\w]+)/i.exec(contentType || "");
  return { rate: rate ? Number(rate[1]) : fallbackRate, encoding: encoding ? encoding[1].toLowerCase() : "s16le" };
}

export class PcmPlayer {
  constructor() {
    this.context = null;
    this.sources = new Set();
    this.begin(24000, "s16le");
  }

  /** Create or resume the AudioContext; call it from the click that starts playback (autoplay rules). */
  unlock() {
    if (!this.context) this.context = new AudioContext({ latencyHint: "interactive" });
    if (this.context.state === "suspended") this.context.resume();
  }

  /** A new stream of mono samples at `rate` Hz, `s16le` or `f32le`. */
  begin(rate, encoding) {
    this.rate = rate;
    this.bytesPerSample = encoding === "f32le" ? 4 : 2;
    this.carry = new Uint8Array(0);
    this.nextTime = 0;
    this.firstStart = null;
    this.samples = 0;
    this.underruns = 0;
  }

  /** Schedule the whole samples in `bytes` (a partial sample waits for the next piece); returns how many. */
  push(bytes) {
    const data = new Uint8Array(this.carry.length + bytes.length);
    data.set(this.carry);
    data.set(bytes, this.carry.length);
    const n = Math.floor(data.length / this.bytesPerSample);
    this.carry = data.slice(n * this.bytesPerSample);
    if (n === 0) return 0;
    const view = new DataView(data.buffer, 0, n * this.bytesPerSample);
    const samples = new Float32Array(n);
    if (this.bytesPerSample === 2) for (let i = 0; i < n; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
    else for (let i = 0; i < n; i++) samples[i] = view.getFloat32(4 * i, true);
    this.schedule(samples);
    return n;
  }

  schedule(samples) {
    const ctx = this.context;
    const buffer = ctx.createBuffer(1, samples.length, this.rate);
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    if (this.nextTime < ctx.currentTime + 0.01) {
      if (this.samples > 0) this.underruns += 1;
      this.nextTime = ctx.currentTime + LEAD_SECONDS;
    }
    source.start(this.nextTime);
    source.onended = () => this.sources.delete(source);
    this.sources.add(source);
    if (this.firstStart === null) this.firstStart = this.nextTime;
    this.nextTime += samples.length / this.rate;
    this.samples += samples.length;
  }

  /** Seconds of this stream already played (the AudioContext's clock past the first piece's start). */
  playedSeconds() {
    if (this.firstStart === null || !this.context) return 0;
    return Math.max(0, Math.min(this.context.currentTime, this.nextTime) - this.firstStart);
  }

  /** Seconds scheduled but not yet played. */
  bufferedSeconds() {
    return this.context ? Math.max(0, this.nextTime - this.context.currentTime) : 0;
  }

  /** Silence now: every scheduled piece stopped. */
  stop() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        /* not started yet on an old browser */
      }
    }
    this.sources.clear();
  }
}
