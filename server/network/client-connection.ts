/**
 * One client socket on the broker side. Frames are decoded as they arrive and handled
 * concurrently, but responses leave in request order: each request takes a slot in a FIFO
 * and a finished response waits for the slots before it. Bounds: at most
 * `pipelinedRequestsMax` requests in progress (reading pauses beyond it) and at most
 * `writeBufferBytesMax` queued on the socket (reading pauses until it drains), so a client
 * that pipelines without reading cannot make the broker buffer without limit.
 *
 * Failure policy: a bad request gets an error response and the connection stays usable;
 * only a broken stream (oversized frame, frame too short for a header) is answered with
 * correlationId -1 and then closed. A handler exception never escapes this file.
 */
import type net from 'node:net';
import { encodeControl, CONTROL_LENGTH_BYTES } from '../../protocol/body.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FrameDecoder, FrameTooLargeError, FRAME_LENGTH_BYTES } from '../../protocol/frame.ts';
import { decodeRequestHeader, REQUEST_HEADER_MIN_BYTES, RESPONSE_HEADER_BYTES, writeResponseHeader, type RequestHeader } from '../../protocol/header.ts';
import type { Logger } from '../logger.ts';
import { CloseConnection, NO_REPLY, type HandlerResult, type Reply } from './reply.ts';

export interface ConnectionLimits {
  maxFrameBytes: number;
  pipelinedRequestsMax: number;
  writeBufferBytesMax: number;
}

/** socket: the connection the request came on (a leader watches its followers' fetch connections close). */
export type RequestHandler = (header: RequestHeader, frame: Buffer, remoteHost: string, socket: net.Socket) => Promise<HandlerResult> | HandlerResult;

interface Slot {
  correlationId: number;
  done: boolean;
  result: HandlerResult | null;
  close: boolean;
}

export class ClientConnection {
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private readonly slots: Slot[] = [];
  private closing = false;
  private paused = false;

  constructor(
    readonly socket: net.Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    private readonly onGone: (c: ClientConnection) => void,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.decoder = new FrameDecoder(limits.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (e) => this.log.debug('socket error', { remote: this.remote, error: e }));
    socket.on('close', () => {
      this.closing = true;
      this.onGone(this);
    });
  }

  get inFlight(): number {
    return this.slots.length;
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    try {
      this.decoder.push(chunk, (frame) => this.onFrame(frame));
    } catch (e) {
      if (e instanceof FrameTooLargeError) {
        this.log.warn('frame too large, closing connection', { remote: this.remote, bytes: e.length, maxBytes: e.maxBytes });
        this.fatal(ErrorCode.FRAME_TOO_LARGE, e.message);
      } else {
        this.log.warn('bad frame, closing connection', { remote: this.remote, error: e as Error });
        this.fatal(ErrorCode.MALFORMED_REQUEST, (e as Error).message);
      }
    }
  }

  private onFrame(frame: Buffer): void {
    if (this.closing) return;
    if (frame.length < REQUEST_HEADER_MIN_BYTES) {
      this.fatal(ErrorCode.MALFORMED_REQUEST, `frame of ${frame.length} bytes is shorter than the ${REQUEST_HEADER_MIN_BYTES}-byte request header`);
      return;
    }
    let header: RequestHeader;
    try {
      header = decodeRequestHeader(frame);
    } catch (e) {
      // The correlation id is readable even when the client id is not: answer that request.
      const slot: Slot = { correlationId: frame.readInt32BE(4), done: true, result: null, close: false };
      slot.result = { control: { message: (e as Error).message }, errorCode: ErrorCode.MALFORMED_REQUEST };
      this.slots.push(slot);
      this.flush();
      return;
    }
    const slot: Slot = { correlationId: header.correlationId, done: false, result: null, close: false };
    this.slots.push(slot);
    if (this.slots.length >= this.limits.pipelinedRequestsMax) this.pause();
    let pending: Promise<HandlerResult> | HandlerResult;
    try {
      pending = this.handler(header, frame, this.socket.remoteAddress ?? '', this.socket);
    } catch (e) {
      this.complete(slot, e);
      return;
    }
    if (pending instanceof Promise) {
      pending.then((r) => this.complete(slot, null, r), (e) => this.complete(slot, e));
    } else {
      this.complete(slot, null, pending);
    }
  }

  private complete(slot: Slot, err: unknown, result?: HandlerResult): void {
    slot.done = true;
    if (err) {
      if (err instanceof CloseConnection) {
        slot.result = NO_REPLY;
        slot.close = true;
      } else if (err instanceof SluiceError) {
        slot.result = { control: { message: err.message }, errorCode: err.code };
      } else {
        this.log.error('request handler failed', { remote: this.remote, error: err as Error, stack: (err as Error)?.stack ?? '' });
        slot.result = { control: { message: `internal error: ${(err as Error)?.message ?? String(err)}` }, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR };
      }
    } else {
      slot.result = result ?? NO_REPLY;
    }
    if (this.slots[0] === slot) this.flush();
  }

  private flush(): void {
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const slot = this.slots.shift()!;
      if (this.closing) continue;
      if (slot.result !== NO_REPLY && slot.result !== null) this.write(slot.correlationId, slot.result);
      if (slot.close) {
        this.closing = true;
        this.socket.end();
        return;
      }
    }
    this.maybeResume();
  }

  private write(correlationId: number, reply: Reply): void {
    const control = encodeControl(reply.control ?? {});
    const sections = reply.sections ?? [];
    let dataBytes = 0;
    for (const s of sections) dataBytes += s.length;
    const prefix = Buffer.allocUnsafe(FRAME_LENGTH_BYTES + RESPONSE_HEADER_BYTES + CONTROL_LENGTH_BYTES + control.length);
    prefix.writeUInt32BE(prefix.length - FRAME_LENGTH_BYTES + dataBytes, 0);
    writeResponseHeader(prefix, FRAME_LENGTH_BYTES, correlationId, reply.errorCode ?? 0);
    prefix.writeUInt32BE(control.length, 10);
    prefix.set(control, 14);
    if (sections.length === 0) {
      this.socket.write(prefix);
      return;
    }
    this.socket.cork();
    this.socket.write(prefix);
    for (const s of sections) if (s.length > 0) this.socket.write(s);
    this.socket.uncork();
  }

  /** Answers a broken stream with correlationId -1 and closes: nothing after it can be framed. */
  private fatal(code: ErrorCode, message: string): void {
    if (this.closing) return;
    this.closing = true;
    const control = encodeControl({ message });
    const out = Buffer.allocUnsafe(FRAME_LENGTH_BYTES + RESPONSE_HEADER_BYTES + CONTROL_LENGTH_BYTES + control.length);
    out.writeUInt32BE(out.length - FRAME_LENGTH_BYTES, 0);
    writeResponseHeader(out, FRAME_LENGTH_BYTES, -1, code);
    out.writeUInt32BE(control.length, 10);
    out.set(control, 14);
    this.socket.end(out);
    // A peer that never reads must not keep the socket alive.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (this.socket.writableLength > this.limits.writeBufferBytesMax) {
      this.pause();
      return;
    }
    if (this.paused && this.slots.length < this.limits.pipelinedRequestsMax && !this.closing) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Stops taking requests; the socket closes once queued responses are written. */
  shutdown(graceMs: number): void {
    this.socket.pause();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.closing = true;
      this.socket.end();
      // Reading again lets the client's end of stream arrive (requests are ignored once
      // closing), so the socket closes as soon as the client hangs up, not at the grace timeout.
      this.socket.resume();
      setTimeout(() => this.socket.destroy(), graceMs).unref();
    };
    if (this.slots.length === 0) finish();
    else {
      const t = setInterval(() => {
        if (this.slots.length === 0 || this.socket.destroyed) {
          clearInterval(t);
          finish();
        }
      }, 10);
      setTimeout(() => { clearInterval(t); finish(); }, graceMs).unref();
    }
  }
}
