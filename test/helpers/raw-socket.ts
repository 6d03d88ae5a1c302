/**
 * A deliberately dumb client for bad-input tests: writes arbitrary bytes and collects
 * whatever frames come back, so tests can speak broken protocol to a real broker.
 */
import net from 'node:net';
import { encodeControl } from '../../protocol/body.ts';
import { FrameDecoder } from '../../protocol/frame.ts';
import { decodeBody } from '../../protocol/body.ts';
import { decodeResponseHeader, RESPONSE_HEADER_BYTES } from '../../protocol/header.ts';

export interface RawResponse {
  correlationId: number;
  errorCode: number;
  control: unknown;
  data: Buffer;
}

export class RawSocket {
  readonly responses: RawResponse[] = [];
  closed = false;
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder(1 << 30);
    socket.on('data', (chunk) => {
      decoder.push(chunk, (frame) => {
        const h = decodeResponseHeader(frame);
        const body = decodeBody(frame, RESPONSE_HEADER_BYTES);
        this.responses.push({ correlationId: h.correlationId, errorCode: h.errorCode, control: body.control, data: body.data });
        this.wake();
      });
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawSocket(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Waits until n responses arrived or the socket closed, at most timeoutMs. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length < n && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} responses (have ${this.responses.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A whole request frame: length, header, control section, data. */
export function requestFrame(apiKey: number, apiVersion: number, correlationId: number, control: unknown, data: Uint8Array = new Uint8Array(0), clientId = 'test'): Buffer {
  const id = Buffer.from(clientId);
  const c = encodeControl(control);
  const len = 10 + id.length + 4 + c.length + data.length;
  const out = Buffer.alloc(4 + len);
  out.writeUInt32BE(len, 0);
  out.writeInt16BE(apiKey, 4);
  out.writeInt16BE(apiVersion, 6);
  out.writeInt32BE(correlationId, 8);
  out.writeInt16BE(id.length, 12);
  id.copy(out, 14);
  out.writeUInt32BE(c.length, 14 + id.length);
  out.set(c, 18 + id.length);
  out.set(data, 18 + id.length + c.length);
  return out;
}
