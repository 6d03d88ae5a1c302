/**
 * One TCP connection to one broker. Requests are pipelined: many may be in flight, each
 * matched to its response by correlation id (responses come back in request order, which
 * the connection also asserts). Every request has a timeout; a closed or failed socket
 * rejects everything in flight, and the connection is then dead: callers open a new one.
 *
 * Security (SPEC §2.5, §2.6): with `tls` the connection is TLS from the first byte and the
 * broker's certificate is verified (against `tls.ca`, else the system roots, and against the
 * host name or IP); with `sasl` connect() authenticates before it resolves, so no request of
 * the caller's is ever sent unauthenticated. Options not given fall back to the process-wide
 * defaults (setConnectionDefaults), which is how the CLI applies --tls-* and --sasl-* to
 * every connection any of its commands opens.
 */
import net from 'node:net';
import tls from 'node:tls';
import { saslAuthenticate, type SaslClientOptions } from './sasl/sasl-client.ts';
import { decodeBody, encodeControl, CONTROL_LENGTH_BYTES } from './body.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import { FrameDecoder, FRAME_LENGTH_BYTES } from './frame.ts';
import { decodeResponseHeader, RESPONSE_HEADER_BYTES, requestHeaderSize, writeRequestHeader } from './header.ts';
import { check } from './schema.ts';
import { responseSchemas } from './apis/index.ts';
import { supportedVersions } from './api-keys.ts';

/** TLS towards the broker. PEM contents (not paths): `ca` to verify the broker, `cert` and `key` for a client certificate. */
export interface TlsClientOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name the broker's certificate must carry; default the host dialled (SNI is sent only for a name, not an IP). */
  servername?: string;
}

export type { SaslClientOptions } from './sasl/sasl-client.ts';

export interface ConnectionOptions {
  clientId?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxFrameBytes?: number;
  tls?: TlsClientOptions;
  sasl?: SaslClientOptions;
}

/** Security every connection of this process uses unless its options say otherwise (the CLI sets it). */
let processDefaults: Pick<ConnectionOptions, 'tls' | 'sasl'> = {};

export function setConnectionDefaults(defaults: Pick<ConnectionOptions, 'tls' | 'sasl'>): void {
  processDefaults = { ...defaults };
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

/** OpenSSL's errors for the usual TLS mistakes, said in the client's terms. */
function tlsMessage(e: Error & { code?: string }): string {
  if (e.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return 'the broker requires a client certificate (tls.cert and tls.key; CLI --tls-cert, --tls-key)';
  if (e.code === 'ERR_SSL_WRONG_VERSION_NUMBER') return 'the broker does not speak TLS on this port (connect without TLS)';
  return e.message;
}

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
  private readonly tls: TlsClientOptions | undefined;
  private readonly sasl: SaslClientOptions | undefined;
  /** Whether any response arrived: a plaintext connection a TLS broker drops gets none. */
  private answered = false;
  /** The user this connection authenticated as (SASL), or null. */
  principal: string | null = null;

  private constructor(host: string, port: number, opts: ConnectionOptions) {
    this.host = host;
    this.port = port;
    this.clientIdBytes = opts.clientId ? Buffer.from(opts.clientId, 'utf8') : null;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.decoder = new FrameDecoder(opts.maxFrameBytes ?? 256 * 1024 * 1024, RESPONSE_HEADER_BYTES);
    this.tls = opts.tls ?? processDefaults.tls;
    this.sasl = opts.sasl ?? processDefaults.sasl;
  }

  static async connect(host: string, port: number, opts: ConnectionOptions = {}): Promise<Connection> {
    const c = new Connection(host, port, opts);
    await c.open();
    if (c.sasl) {
      try {
        await saslAuthenticate(c, c.sasl);
        c.principal = c.sasl.username;
      } catch (e) {
        c.close();
        throw e;
      }
    }
    return c;
  }

  get secure(): boolean {
    return this.tls !== undefined;
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
      const t = this.tls;
      const socket: net.Socket = t
        ? tls.connect({ host: this.host, port: this.port, ca: t.ca, cert: t.cert, key: t.key, servername: t.servername ?? (net.isIP(this.host) ? undefined : this.host), minVersion: 'TLSv1.2' })
        : net.connect({ host: this.host, port: this.port, noDelay: true });
      if (t) socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionError(`connect to ${this.host}:${this.port} timed out after ${this.connectTimeoutMs} ms${t ? ' (TCP and TLS handshake)' : ''}`));
      }, this.connectTimeoutMs);
      socket.once(t ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        this.socket = socket;
        socket.on('error', () => {}); // 'close' follows and carries the failure
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        if (!this.socket) reject(new ConnectionError(`connect to ${this.host}:${this.port}${t ? ' (TLS)' : ''}: ${t ? tlsMessage(e) : e.message}`));
        else this.fail(new ConnectionError(`connection to ${this.host}:${this.port}: ${t ? tlsMessage(e) : e.message}`));
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          this.decoder.push(chunk, (frame) => this.onFrame(frame));
        } catch (e) {
          this.fail(new ConnectionError(`bad response stream from ${this.host}:${this.port}: ${(e as Error).message}`));
        }
      });
      socket.on('close', () => {
        // A broker with TLS cannot frame an answer to a plaintext client: it drops the connection.
        const hint = this.answered || this.inFlight === 0 ? ''
          : t ? ' before answering (a broker that refuses the client certificate closes the connection right after the TLS handshake: check the certificate and key)'
          : ' before answering (a broker with TLS closes plaintext connections: connect with TLS)';
        this.fail(new ConnectionError(`connection to ${this.host}:${this.port} closed${hint}`));
      });
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
    this.answered = true;
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
