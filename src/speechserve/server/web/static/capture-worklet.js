// AudioWorklet processor of the microphone: copies channel 0 to the main thread in blocks of ~1/20 s.

const BLOCK_SECONDS = 0.05;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(Math.round(sampleRate * BLOCK_SECONDS));
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.flush(true);
    };
  }

  /** Hand the block filled so far to the main thread (`last`: the answer to its "flush"). */
  flush(last = false) {
    this.port.postMessage({ samples: this.block.slice(0, this.filled), last });
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let offset = 0;
      while (offset < channel.length) {
        const n = Math.min(channel.length - offset, this.block.length - this.filled);
        this.block.set(channel.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === this.block.length) this.flush();
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
