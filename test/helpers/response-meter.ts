/**
 * A client socket for memory tests: it counts the bytes of each response frame without
 * keeping them (a test must not hold the gigabyte a broken broker might send), and keeps
 * only the first bytes of each frame, enough to decode header and control.
 */
import net from 'node:net';
import { decodeBody } from '../../protocol/body.ts';
import { RESPONSE_HEADER_BYTES } from '../../protocol/header.ts';

const KEEP_BYTES = 1024 * 1024;

export interface MeteredResponse {
  correlationId: number;
  errorCode: number;
  control: unknown;
  /** Payload length (after the 4-byte frame length). */
  frameBytes: number;
}

export class ResponseMeter {
  readonly responses: MeteredResponse[] = [];
  closed = false;
  private lenBuf = Buffer.alloc(4);
  private lenHave = 0;
  private need = -1;
  private got = 0;
  private head: Buffer[] = [];
  private headBytes = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<ResponseMeter> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new ResponseMeter(s)));
      s.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.need < 0) {
        const take = Math.min(4 - this.lenHave, chunk.length - pos);
        chunk.copy(this.lenBuf, this.lenHave, pos, pos + take);
        this.lenHave += take;
        pos += take;
        if (this.lenHave < 4) return;
        this.lenHave = 0;
        this.need = this.lenBuf.readUInt32BE(0);
        this.got = 0;
      }
      const take = Math.min(this.need - this.got, chunk.length - pos);
      if (this.headBytes < KEEP_BYTES) {
        const keep = Math.min(take, KEEP_BYTES - this.headBytes);
        this.head.push(Buffer.from(chunk.subarray(pos, pos + keep)));
        this.headBytes += keep;
      }
      this.got += take;
      pos += take;
      if (this.got === this.need) {
        const head = Buffer.concat(this.head);
        this.responses.push({
          correlationId: head.readInt32BE(0),
          errorCode: head.readInt16BE(4),
          control: decodeBody(head, RESPONSE_HEADER_BYTES).control,
          frameBytes: this.need,
        });
        this.head = [];
        this.headBytes = 0;
        this.need = -1;
      }
    }
  }

  async waitFor(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.responses.length} of ${n} responses`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} responses (have ${this.responses.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
