/**
 * Framing: every request and response is a 4-byte big-endian unsigned length N followed by
 * N bytes. FrameDecoder turns a byte stream into whole frames without copying a frame that
 * arrived in one chunk, and assembles a split frame into one buffer sized once.
 */

/** The broker's TCP port unless configured otherwise. */
export const DEFAULT_PORT = 9292;
export const FRAME_LENGTH_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

export class FrameTooLargeError extends Error {
  constructor(readonly length: number, readonly maxBytes: number) {
    super(`frame of ${length} bytes exceeds the limit of ${maxBytes}`);
  }
}

export class FrameDecoder {
  private lenBuf = Buffer.alloc(FRAME_LENGTH_BYTES);
  private lenHave = 0;
  /** Length of the frame being assembled, -1 when none. */
  private need = -1;
  // Parts of a split frame, joined once complete: memory follows the bytes that actually
  // arrived, so announcing a huge frame costs a peer nothing until it sends the bytes.
  private parts: Buffer[] = [];
  private have = 0;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, private readonly minFrameBytes = 0) {}

  /** True when no partial frame is buffered. */
  get idle(): boolean {
    return this.lenHave === 0 && this.need < 0;
  }

  /** Bytes held for the frame being assembled (length prefix and payload so far). */
  get bufferedBytes(): number {
    return this.lenHave + this.have;
  }

  /** Drops a partial frame, e.g. when its connection closes, so its memory can be freed. */
  reset(): void {
    this.parts = [];
    this.have = 0;
    this.need = -1;
    this.lenHave = 0;
  }

  /**
   * Feeds a chunk; calls onFrame for each completed frame in order. Throws FrameTooLargeError
   * (or RangeError for a frame below the minimum) and then must not be fed again.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.need < 0) {
        if (this.lenHave === 0 && n - pos >= FRAME_LENGTH_BYTES) {
          const len = chunk.readUInt32BE(pos);
          this.check(len);
          pos += FRAME_LENGTH_BYTES;
          if (n - pos >= len) {
            // The common case: the whole frame is in this chunk, handed out without a copy.
            onFrame(chunk.subarray(pos, pos + len));
            pos += len;
            continue;
          }
          this.need = len;
        } else {
          const take = Math.min(FRAME_LENGTH_BYTES - this.lenHave, n - pos);
          chunk.copy(this.lenBuf, this.lenHave, pos, pos + take);
          this.lenHave += take;
          pos += take;
          if (this.lenHave < FRAME_LENGTH_BYTES) return;
          this.lenHave = 0;
          const len = this.lenBuf.readUInt32BE(0);
          this.check(len);
          this.need = len;
        }
        if (this.need === 0) {
          this.need = -1;
          onFrame(Buffer.alloc(0));
          continue;
        }
      }
      const take = Math.min(this.need - this.have, n - pos);
      this.parts.push(chunk.subarray(pos, pos + take));
      this.have += take;
      pos += take;
      if (this.have === this.need) {
        const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.need);
        this.parts = [];
        this.have = 0;
        this.need = -1;
        onFrame(frame);
      }
    }
  }

  private check(len: number): void {
    if (len > this.maxFrameBytes) throw new FrameTooLargeError(len, this.maxFrameBytes);
    if (len < this.minFrameBytes) throw new RangeError(`frame of ${len} bytes is shorter than the ${this.minFrameBytes}-byte minimum`);
  }
}
