/**
 * One client socket on the broker side. Frames are decoded as they arrive and handled
 * concurrently, but responses leave in request order: each request takes a slot in a FIFO
 * and a finished response waits for the slots before it.
 *
 * Bounds (why: a client that pipelines without reading, or sends half a frame and stops,
 * must not make the broker hold memory without limit):
 * - at most `pipelinedRequestsMax` requests received and not yet answered (reading pauses);
 * - unsent response bytes (finished responses waiting for earlier ones, plus the socket's
 *   buffer) at most `writeBufferBytesMax`: beyond it no further request is started and
 *   reading pauses until the client reads. Requests are started in order and at most one
 *   Fetch (the one API with large responses, capped by fetchResponseBytesMax) runs at a time,
 *   so unsent bytes stay below writeBufferBytesMax + one Fetch response + the small
 *   responses of the requests in progress;
 * - a half-received frame counts against the broker-wide PartialFrameBudget and must be
 *   complete within `partialFrameTimeoutMs` (or another frame must complete meanwhile);
 *   otherwise the client gets REQUEST_TIMED_OUT with correlationId -1 and the connection closes.
 * On close every buffer of the connection is dropped: pending frames, finished responses,
 * the partial frame and its budget share.
 *
 * Failure policy: a bad request gets an error response and the connection stays usable;
 * only a broken stream (oversized frame, frame too short for a header, a frame that never
 * completes) is answered with correlationId -1 and then closed. A handler exception never
 * escapes this file.
 */
import type net from 'node:net';
import { ApiKey } from '../../protocol/api-keys.ts';
import { encodeControl, CONTROL_LENGTH_BYTES } from '../../protocol/body.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FrameDecoder, FrameTooLargeError, FRAME_LENGTH_BYTES } from '../../protocol/frame.ts';
import { decodeRequestHeader, REQUEST_HEADER_MIN_BYTES, RESPONSE_HEADER_BYTES, writeResponseHeader, type RequestHeader } from '../../protocol/header.ts';
import type { Logger } from '../logger.ts';
import type { PartialFrameBudget } from './partial-frame-budget.ts';
import { CloseConnection, NO_REPLY, type HandlerResult, type Reply } from './reply.ts';

export interface ConnectionLimits {
  frameBytesMax: number;
  pipelinedRequestsMax: number;
  writeBufferBytesMax: number;
  partialFrameTimeoutMs: number;
}

/** socket: the connection the request came on (a leader watches its followers' fetch connections close). */
export type RequestHandler = (header: RequestHeader, frame: Buffer, remoteHost: string, socket: net.Socket) => Promise<HandlerResult> | HandlerResult;

interface Slot {
  correlationId: number;
  done: boolean;
  /** The encoded response frame, once done (null for no reply). */
  out: Buffer[] | null;
  bytes: number;
  close: boolean;
}

export class ClientConnection {
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  /** Frames received but not started, in order (waiting for a Fetch or for the client to read). */
  private readonly pending: Buffer[] = [];
  private readonly slots: Slot[] = [];
  /** Bytes of finished responses not yet handed to the socket. */
  private queuedBytes = 0;
  private fetchRunning = false;
  private pumping = false;
  private closing = false;
  private paused = false;
  /** Reading stopped because the broker-wide partial-frame budget is exceeded. */
  private waitingForFrameBudget = false;
  private partialBytesCounted = 0;
  private partialTimer: NodeJS.Timeout | null = null;
  private framesReceived = 0;
  private framesAtTimerStart = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    private readonly onGone: (c: ClientConnection) => void,
    private readonly frameBudget: PartialFrameBudget,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.decoder = new FrameDecoder(limits.frameBytesMax);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('error', (e) => this.log.debug('socket error', { remote: this.remote, error: e }));
    socket.on('close', () => {
      this.closing = true;
      this.release();
      this.onGone(this);
    });
  }

  get inFlight(): number {
    return this.slots.length + this.pending.length;
  }

  /** Response bytes the client has yet to receive: finished and queued, or in the socket buffer. */
  get unsentBytes(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    try {
      this.decoder.push(chunk, (frame) => {
        this.framesReceived++;
        this.pending.push(frame);
      });
    } catch (e) {
      if (e instanceof FrameTooLargeError) {
        this.log.warn('frame too large, closing connection', { remote: this.remote, bytes: e.length, maxBytes: e.maxBytes });
        this.fatal(ErrorCode.FRAME_TOO_LARGE, e.message);
      } else {
        this.log.warn('bad frame, closing connection', { remote: this.remote, error: e as Error });
        this.fatal(ErrorCode.MALFORMED_REQUEST, (e as Error).message);
      }
    }
    if (!this.closing) this.trackPartialFrame();
    this.pump();
  }

  /** Keeps the budget share and the completion timer in step with the decoder's partial frame. */
  private trackPartialFrame(): void {
    const now = this.decoder.bufferedBytes;
    this.frameBudget.adjust(now - this.partialBytesCounted);
    this.partialBytesCounted = now;
    if (now === 0) {
      if (this.partialTimer) {
        clearTimeout(this.partialTimer);
        this.partialTimer = null;
      }
      return;
    }
    if (!this.partialTimer) this.armPartialTimer();
    if (this.frameBudget.exceeded && !this.waitingForFrameBudget) {
      this.waitingForFrameBudget = true;
      this.frameBudget.waitForRoom(this.onFrameBudgetRoom);
    }
  }

  private readonly onFrameBudgetRoom = (): void => {
    this.waitingForFrameBudget = false;
    this.pump();
  };

  private armPartialTimer(): void {
    this.framesAtTimerStart = this.framesReceived;
    this.partialTimer = setTimeout(() => this.onPartialTimeout(), this.limits.partialFrameTimeoutMs);
    this.partialTimer.unref();
  }

  private onPartialTimeout(): void {
    this.partialTimer = null;
    if (this.closing || this.decoder.bufferedBytes === 0) return;
    // Frames kept completing (a busy stream whose chunks end mid-frame), or the broker itself
    // stopped reading for backpressure: neither is the client stalling.
    const backpressure = this.paused && !this.waitingForFrameBudget;
    if (this.framesReceived !== this.framesAtTimerStart || backpressure) {
      this.armPartialTimer();
      return;
    }
    this.log.warn('request frame not completed in time, closing connection', { remote: this.remote, bufferedBytes: this.decoder.bufferedBytes, timeoutMs: this.limits.partialFrameTimeoutMs });
    this.fatal(ErrorCode.REQUEST_TIMED_OUT, `request frame not completed within ${this.limits.partialFrameTimeoutMs} ms`);
  }

  /**
   * Starts pending requests in order while the bounds allow, then decides whether to read.
   * Not re-entrant: a handler that answers synchronously calls back into pump() through
   * complete(), and thousands of tiny frames in one chunk must not nest that deep; the
   * running loop re-checks its condition and picks up whatever changed.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closing && this.pending.length > 0 && this.unsentBytes < this.limits.writeBufferBytesMax) {
        const frame = this.pending[0]!;
        const isFetch = frame.length >= 2 && frame.readInt16BE(0) === ApiKey.FETCH;
        if (isFetch && this.fetchRunning) break;
        this.pending.shift();
        this.start(frame, isFetch);
      }
    } finally {
      this.pumping = false;
    }
    this.updateReading();
  }

  private start(frame: Buffer, isFetch: boolean): void {
    if (frame.length < REQUEST_HEADER_MIN_BYTES) {
      this.fatal(ErrorCode.MALFORMED_REQUEST, `frame of ${frame.length} bytes is shorter than the ${REQUEST_HEADER_MIN_BYTES}-byte request header`);
      return;
    }
    let header: RequestHeader;
    try {
      header = decodeRequestHeader(frame);
    } catch (e) {
      // The correlation id is readable even when the client id is not: answer that request.
      const slot: Slot = { correlationId: frame.readInt32BE(4), done: false, out: null, bytes: 0, close: false };
      this.slots.push(slot);
      this.complete(slot, false, null, { control: { message: (e as Error).message }, errorCode: ErrorCode.MALFORMED_REQUEST });
      return;
    }
    const slot: Slot = { correlationId: header.correlationId, done: false, out: null, bytes: 0, close: false };
    this.slots.push(slot);
    if (isFetch) this.fetchRunning = true;
    let pending: Promise<HandlerResult> | HandlerResult;
    try {
      pending = this.handler(header, frame, this.socket.remoteAddress ?? '', this.socket);
    } catch (e) {
      this.complete(slot, isFetch, e);
      return;
    }
    if (pending instanceof Promise) {
      pending.then((r) => this.complete(slot, isFetch, null, r), (e) => this.complete(slot, isFetch, e));
    } else {
      this.complete(slot, isFetch, null, pending);
    }
  }

  private complete(slot: Slot, isFetch: boolean, err: unknown, result?: HandlerResult): void {
    slot.done = true;
    if (isFetch) this.fetchRunning = false;
    let reply: HandlerResult = NO_REPLY;
    if (err) {
      if (err instanceof CloseConnection) {
        slot.close = true;
      } else if (err instanceof SluiceError) {
        reply = { control: { message: err.message }, errorCode: err.code };
      } else {
        this.log.error('request handler failed', { remote: this.remote, error: err as Error, stack: (err as Error)?.stack ?? '' });
        reply = { control: { message: `internal error: ${(err as Error)?.message ?? String(err)}` }, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR };
      }
    } else {
      reply = result ?? NO_REPLY;
      if (reply !== NO_REPLY && reply.closeAfter) slot.close = true;
    }
    // A closed connection keeps nothing: the response is dropped right here.
    if (reply !== NO_REPLY && !this.closing) {
      slot.out = encodeResponse(slot.correlationId, reply);
      for (const b of slot.out) slot.bytes += b.length;
      this.queuedBytes += slot.bytes;
    }
    if (this.slots[0] === slot) this.flush();
    else this.pump();
  }

  private flush(): void {
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const slot = this.slots.shift()!;
      this.queuedBytes -= slot.bytes;
      if (this.closing) continue;
      if (slot.out) {
        if (slot.out.length > 1) this.socket.cork();
        for (const b of slot.out) if (b.length > 0) this.socket.write(b);
        if (slot.out.length > 1) this.socket.uncork();
        slot.out = null;
      }
      if (slot.close) {
        this.closing = true;
        this.release();
        this.socket.end();
        return;
      }
    }
    this.pump();
  }

  /** Answers a broken stream with correlationId -1 and closes: nothing after it can be framed. */
  private fatal(code: ErrorCode, message: string): void {
    if (this.closing) return;
    this.closing = true;
    this.release();
    this.socket.end(encodeResponse(-1, { control: { message }, errorCode: code })[0]);
    // A peer that never reads must not keep the socket alive.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  /** Drops everything this connection holds once it will not be read from again. */
  private release(): void {
    this.pending.length = 0;
    for (const s of this.slots) s.out = null;
    this.queuedBytes = 0;
    for (const s of this.slots) s.bytes = 0;
    this.decoder.reset();
    this.frameBudget.adjust(-this.partialBytesCounted);
    this.partialBytesCounted = 0;
    if (this.waitingForFrameBudget) {
      this.frameBudget.cancelWait(this.onFrameBudgetRoom);
      this.waitingForFrameBudget = false;
    }
    if (this.partialTimer) {
      clearTimeout(this.partialTimer);
      this.partialTimer = null;
    }
  }

  /** Reads while requests, unsent bytes and the partial-frame budget are all within bounds. */
  private updateReading(): void {
    if (this.closing) return;
    const read =
      this.slots.length + this.pending.length < this.limits.pipelinedRequestsMax &&
      this.unsentBytes < this.limits.writeBufferBytesMax &&
      !this.waitingForFrameBudget;
    if (read && this.paused) {
      this.paused = false;
      this.socket.resume();
    } else if (!read && !this.paused) {
      this.paused = true;
      this.socket.pause();
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
      this.release();
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

/** One response frame as buffers: length, header and control, then the data sections as they are. */
function encodeResponse(correlationId: number, reply: Reply): Buffer[] {
  const control = encodeControl(reply.control ?? {});
  const sections = reply.sections ?? [];
  let dataBytes = 0;
  for (const s of sections) dataBytes += s.length;
  const prefix = Buffer.allocUnsafe(FRAME_LENGTH_BYTES + RESPONSE_HEADER_BYTES + CONTROL_LENGTH_BYTES + control.length);
  prefix.writeUInt32BE(prefix.length - FRAME_LENGTH_BYTES + dataBytes, 0);
  writeResponseHeader(prefix, FRAME_LENGTH_BYTES, correlationId, reply.errorCode ?? 0);
  prefix.writeUInt32BE(control.length, FRAME_LENGTH_BYTES + RESPONSE_HEADER_BYTES);
  prefix.set(control, FRAME_LENGTH_BYTES + RESPONSE_HEADER_BYTES + CONTROL_LENGTH_BYTES);
  const out: Buffer[] = [prefix];
  for (const s of sections) out.push(Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.length));
  return out;
}
