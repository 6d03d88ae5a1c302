/**
 * One TCP connection to one broker. Requests are pipelined: many may be in flight, each
 * matched to its response by correlation id (responses come back in request order, which
 * the connection also asserts). Every request has a timeout; a closed or failed socket
 * rejects everything in flight, and the connection is then dead: callers open a new one.
 */
import net from 'node:net';
import { decodeBody, encodeControl, CONTROL_LENGTH_BYTES } from './body.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import { FrameDecoder, FRAME_LENGTH_BYTES } from './frame.ts';
import { decodeResponseHeader, RESPONSE_HEADER_BYTES, requestHeaderSize, writeRequestHeader } from './header.ts';
import { check } from './schema.ts';
import { responseSchemas } from './apis/index.ts';
import { supportedVersions } from './api-keys.ts';

export interface ConnectionOptions {
  clientId?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxFrameBytes?: number;
}

export interface Response<T> {
  control: T;
  /** The data section (record sets), a view into the received frame. */
  data: Buffer;
}

interface Pending {
  correlationId: number;
  apiKey: number;
  resolve: (r: Response<unknown>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

export class ConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

const IN_FLIGHT_MAX = 10_000;

export class Connection {
  readonly host: string;
  readonly port: number;
  private socket: net.Socket | null = null;
  private readonly decoder: FrameDecoder;
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private nextCorrelationId = 1;
  private readonly clientIdBytes: Buffer | null;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private closedError: Error | null = null;
  private closeListeners: Array<(e: Error) => void> = [];

  private constructor(host: string, port: number, opts: ConnectionOptions) {
    this.host = host;
    this.port = port;
    this.clientIdBytes = opts.clientId ? Buffer.from(opts.clientId, 'utf8') : null;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.decoder = new FrameDecoder(opts.maxFrameBytes ?? 256 * 1024 * 1024, RESPONSE_HEADER_BYTES);
  }

  static async connect(host: string, port: number, opts: ConnectionOptions = {}): Promise<Connection> {
    const c = new Connection(host, port, opts);
    await c.open();
    return c;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  onClose(fn: (e: Error) => void): void {
    if (this.closedError) fn(this.closedError);
    else this.closeListeners.push(fn);
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`connect to ${this.host}:${this.port} timed out after ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        this.socket = socket;
        socket.on('error', () => {}); // 'close' follows and carries the failure
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        if (!this.socket) reject(new ConnectionError(`connect to ${this.host}:${this.port}: ${e.message}`));
        else this.fail(new ConnectionError(`connection to ${this.host}:${this.port}: ${e.message}`));
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          this.decoder.push(chunk, (frame) => this.onFrame(frame));
        } catch (e) {
          this.fail(new ConnectionError(`bad response stream from ${this.host}:${this.port}: ${(e as Error).message}`));
        }
      });
      socket.on('close', () => this.fail(new ConnectionError(`connection to ${this.host}:${this.port} closed`)));
    });
  }

  /**
   * Sends a request. `data` sections follow the control section unchanged (record sets).
   * With expectResponse false (Produce with acks=0) the promise resolves once written.
   */
  send<T>(apiKey: number, control: unknown, data: readonly Uint8Array[] = [], expectResponse = true, timeoutMs = this.requestTimeoutMs): Promise<Response<T>> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.inFlight >= IN_FLIGHT_MAX) return Promise.reject(new ConnectionError(`more than ${IN_FLIGHT_MAX} requests in flight`));
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = this.nextCorrelationId >= 0x7fffffff ? 1 : this.nextCorrelationId + 1;
    const controlBytes = encodeControl(control);
    let dataBytes = 0;
    for (const d of data) dataBytes += d.length;
    const headerBytes = requestHeaderSize(this.clientIdBytes);
    const prefixLen = FRAME_LENGTH_BYTES + headerBytes + CONTROL_LENGTH_BYTES + controlBytes.length;
    const prefix = Buffer.allocUnsafe(prefixLen);
    prefix.writeUInt32BE(prefixLen - FRAME_LENGTH_BYTES + dataBytes, 0);
    const version = supportedVersions[apiKey]?.max ?? 0;
    let p = writeRequestHeader(prefix, FRAME_LENGTH_BYTES, apiKey, version, correlationId, this.clientIdBytes);
    prefix.writeUInt32BE(controlBytes.length, p);
    prefix.set(controlBytes, p + CONTROL_LENGTH_BYTES);
    const socket = this.socket!;
    if (!expectResponse) {
      return new Promise((resolve, reject) => {
        socket.cork();
        socket.write(prefix);
        for (let i = 0; i < data.length; i++) {
          if (i === data.length - 1) socket.write(data[i]!, (e) => (e ? reject(e) : resolve({ control: {} as T, data: Buffer.alloc(0) })));
          else socket.write(data[i]!);
        }
        if (data.length === 0) socket.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve({ control: {} as T, data: Buffer.alloc(0) })));
        socket.uncork();
      });
    }
    return new Promise<Response<T>>((resolve, reject) => {
      const entry: Pending = { correlationId, apiKey, resolve: resolve as (r: Response<unknown>) => void, reject, timer: null };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          // A late response would desynchronise the in-order stream; the only safe recovery is a new connection.
          this.fail(new SluiceError(ErrorCode.REQUEST_TIMED_OUT, `no response from ${this.host}:${this.port} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.push(entry);
      socket.cork();
      socket.write(prefix);
      for (const d of data) socket.write(d);
      socket.uncork();
    });
  }

  private onFrame(frame: Buffer): void {
    const header = decodeResponseHeader(frame);
    const entry = this.pending[this.pendingHead];
    if (!entry) {
      // The broker reports a fatal connection-level error (e.g. FRAME_TOO_LARGE) with id -1.
      this.fail(new SluiceError(header.errorCode as ErrorCode, `unsolicited response from ${this.host}:${this.port}`));
      return;
    }
    if (header.correlationId !== entry.correlationId) {
      if (header.correlationId === -1 && header.errorCode !== 0) {
        this.fail(new SluiceError(header.errorCode as ErrorCode, `broker ${this.host}:${this.port} closed the connection`));
      } else {
        this.fail(new ConnectionError(`response correlation id ${header.correlationId}, expected ${entry.correlationId}`));
      }
      return;
    }
    this.pending[this.pendingHead] = undefined as unknown as Pending;
    this.pendingHead++;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    if (entry.timer) clearTimeout(entry.timer);
    try {
      const body = decodeBody(frame, RESPONSE_HEADER_BYTES);
      if (header.errorCode !== 0) {
        const msg = (body.control as { message?: unknown })?.message;
        entry.reject(new SluiceError(header.errorCode as ErrorCode, typeof msg === 'string' ? msg : undefined));
        return;
      }
      const schema = responseSchemas[entry.apiKey];
      if (schema) check(schema, body.control);
      entry.resolve({ control: body.control, data: body.data });
    } catch (e) {
      entry.reject(e as Error);
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.socket?.destroy();
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      const p = this.pending[i]!;
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.length = 0;
    this.pendingHead = 0;
    for (const fn of this.closeListeners) fn(err);
    this.closeListeners = [];
  }

  close(): void {
    this.fail(new ConnectionError(`connection to ${this.host}:${this.port} closed by the client`));
  }
}
