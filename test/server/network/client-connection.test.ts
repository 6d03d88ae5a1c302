/**
 * ClientConnection over a real loopback socket pair, with a fake request handler: response
 * order, the pipelining and write-buffer bounds, one Fetch at a time, what a close releases,
 * and the partial-frame timeout. In-process: no broker.
 */
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { ApiKey } from '../../../protocol/api-keys.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { FRAME_LENGTH_BYTES, FrameDecoder } from '../../../protocol/frame.ts';
import type { RequestHeader } from '../../../protocol/header.ts';
import type { Logger } from '../../../server/logger.ts';
import { ClientConnection, type ConnectionLimits, type RequestHandler } from '../../../server/network/client-connection.ts';
import { PartialFrameBudget } from '../../../server/network/partial-frame-budget.ts';
import type { HandlerResult } from '../../../server/network/reply.ts';
import { RawSocket, requestFrame } from '../../helpers/raw-socket.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const LIMITS: ConnectionLimits = { frameBytesMax: 1024 * 1024, pipelinedRequestsMax: 256, writeBufferBytesMax: 64 * 1024 * 1024, partialFrameTimeoutMs: 60_000 };

interface Pair {
  conn: ClientConnection;
  client: RawSocket;
  budget: PartialFrameBudget;
  gone: Promise<void>;
}

/** A listener that wraps its one accepted socket in a ClientConnection, and a client for it. */
async function pair(t: TestContext, handler: RequestHandler, limits: Partial<ConnectionLimits> = {}, budget = new PartialFrameBudget(1 << 30)): Promise<Pair> {
  let onGone!: () => void;
  const gone = new Promise<void>((r) => (onGone = r));
  const accepted = new Promise<ClientConnection>((resolve) => {
    const server = net.createServer((socket) => {
      resolve(new ClientConnection(socket, handler, { ...LIMITS, ...limits }, quiet, () => onGone(), budget));
      server.close();
    });
    server.listen(0, '127.0.0.1', async () => {
      client = await RawSocket.connect((server.address() as net.AddressInfo).port);
      t.after(() => client.close());
    });
  });
  let client!: RawSocket;
  const conn = await accepted;
  while (!client) await sleep(5);
  return { conn, client, budget, gone };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A handler whose answers the test releases one by one. */
function heldHandler() {
  const calls: { header: RequestHeader; answer: (r: HandlerResult) => void }[] = [];
  const handler: RequestHandler = (header) => new Promise<HandlerResult>((answer) => calls.push({ header, answer }));
  return { calls, handler };
}

const echo = (header: RequestHeader): HandlerResult => ({ control: { correlationId: header.correlationId } });

test('responses leave in request order although handlers finish out of order', async (t) => {
  const { calls, handler } = heldHandler();
  const { client } = await pair(t, handler);
  for (let id = 1; id <= 5; id++) client.write(requestFrame(ApiKey.METADATA, 0, id, {}));
  await until('five requests started together', () => calls.length === 5);
  for (const c of [...calls].reverse()) {
    c.answer(echo(c.header));
    await sleep(10);
  }
  await client.waitFor(5);
  assert.deepEqual(client.responses.map((r) => r.correlationId), [1, 2, 3, 4, 5]);
  assert.deepEqual(client.responses.map((r) => (r.control as { correlationId: number }).correlationId), [1, 2, 3, 4, 5]);
});

test('at most pipelinedRequestsMax requests are in flight: beyond it the broker stops reading', async (t) => {
  const { calls, handler } = heldHandler();
  const { conn, client } = await pair(t, handler, { pipelinedRequestsMax: 4 });
  for (let id = 1; id <= 4; id++) client.write(requestFrame(ApiKey.METADATA, 0, id, {}));
  await until('four requests started', () => calls.length === 4);
  await until('reading paused', () => conn.socket.isPaused());
  for (let id = 5; id <= 8; id++) client.write(requestFrame(ApiKey.METADATA, 0, id, {}));
  await sleep(200);
  assert.equal(calls.length, 4, 'no request read while four are unanswered');
  assert.equal(conn.inFlight, 4);
  calls[0]!.answer(echo(calls[0]!.header));
  await until('reading resumed and the next request started', () => calls.length > 4);
  while (client.responses.length < 8) {
    for (const c of calls) c.answer(echo(c.header));
    await sleep(10);
  }
  assert.deepEqual(client.responses.map((r) => r.correlationId), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(conn.inFlight, 0);
});

test('unsent response bytes over writeBufferBytesMax stop new requests until the client reads', async (t) => {
  const RESPONSE_BYTES = 1024 * 1024;
  let started = 0;
  const handler: RequestHandler = (header) => {
    started++;
    return { control: { id: header.correlationId }, sections: [Buffer.alloc(RESPONSE_BYTES, header.correlationId)] };
  };
  const { conn, client } = await pair(t, handler, { writeBufferBytesMax: 64 * 1024 });
  client.socket.pause(); // the client does not read
  for (let id = 1; id <= 10; id++) client.write(requestFrame(ApiKey.METADATA, 0, id, {}));
  await until('the first request answered', () => started >= 1);
  await sleep(300);
  assert.ok(started < 10, `requests kept starting while ${conn.unsentBytes} bytes were unsent (started ${started})`);
  // Each request started only below the bound, so unsent bytes stay below it plus the responses started.
  assert.ok(conn.unsentBytes < 64 * 1024 + started * (RESPONSE_BYTES + 64), `unsent ${conn.unsentBytes}`);
  client.socket.resume();
  await client.waitFor(10, 20_000);
  assert.equal(started, 10);
  assert.deepEqual(client.responses.map((r) => r.correlationId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(client.responses.every((r) => r.data.length === RESPONSE_BYTES && r.data[0] === r.correlationId));
});

test('one Fetch runs at a time per connection; later requests wait behind it', async (t) => {
  const { calls, handler } = heldHandler();
  const { client } = await pair(t, handler);
  client.write(requestFrame(ApiKey.FETCH, 0, 1, {}));
  client.write(requestFrame(ApiKey.FETCH, 0, 2, {}));
  await until('the first Fetch started', () => calls.length === 1);
  await sleep(100);
  assert.equal(calls.length, 1, 'the second Fetch waits for the first');
  calls[0]!.answer(echo(calls[0]!.header));
  await until('the second Fetch started', () => calls.length === 2);
  calls[1]!.answer(echo(calls[1]!.header));
  await client.waitFor(2);
  assert.deepEqual(client.responses.map((r) => r.correlationId), [1, 2]);
});

test('handler errors become error responses and the connection stays usable', async (t) => {
  const handler: RequestHandler = (header) => {
    if (header.correlationId === 1) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 'no such topic');
    if (header.correlationId === 2) return Promise.reject(new Error('boom'));
    return echo(header);
  };
  const { client } = await pair(t, handler);
  for (let id = 1; id <= 3; id++) client.write(requestFrame(ApiKey.METADATA, 0, id, {}));
  await client.waitFor(3);
  assert.deepEqual(client.responses.map((r) => [r.correlationId, r.errorCode]), [[1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], [2, ErrorCode.UNKNOWN_SERVER_ERROR], [3, 0]]);
  assert.equal(client.closed, false);
});

test('an oversized frame gets FRAME_TOO_LARGE with correlationId -1 and the connection closes', async (t) => {
  const { client, gone } = await pair(t, (h) => echo(h), { frameBytesMax: 1024 });
  client.write(requestFrame(ApiKey.METADATA, 0, 7, {}, Buffer.alloc(2048)));
  await client.waitFor(1);
  assert.equal(client.responses[0]!.correlationId, -1);
  assert.equal(client.responses[0]!.errorCode, ErrorCode.FRAME_TOO_LARGE);
  assert.ok(await client.waitClosed());
  await gone;
});

test('a close releases everything: pending requests, unsent responses, the partial frame and its budget share', async (t) => {
  const { calls, handler } = heldHandler();
  const budget = new PartialFrameBudget(1 << 30);
  const { conn, client, gone } = await pair(t, handler, {}, budget);
  client.write(requestFrame(ApiKey.METADATA, 0, 1, {}));
  await until('the request started', () => calls.length === 1);
  const partial = requestFrame(ApiKey.METADATA, 0, 2, {}, Buffer.alloc(4096));
  client.write(partial.subarray(0, 1000));
  // Counted once the length prefix is read: the frame's bytes after it.
  await until('the partial frame counted', () => budget.totalBytes === 1000 - FRAME_LENGTH_BYTES);
  client.close();
  await gone;
  assert.equal(budget.totalBytes, 0);
  assert.equal(conn.unsentBytes, 0);
  // The answer of a request still running when the connection closed is dropped, not queued.
  calls[0]!.answer({ control: {}, sections: [Buffer.alloc(1024 * 1024)] });
  await sleep(20);
  assert.equal(conn.inFlight, 0);
  assert.equal(conn.unsentBytes, 0);
});

test('a frame not completed within partialFrameTimeoutMs gets REQUEST_TIMED_OUT (-1) and the connection closes', async (t) => {
  const budget = new PartialFrameBudget(1 << 30);
  const { client, gone } = await pair(t, (h) => echo(h), { partialFrameTimeoutMs: 200 }, budget);
  const frame = requestFrame(ApiKey.METADATA, 0, 1, {}, Buffer.alloc(100));
  const startedMs = Date.now();
  client.write(frame.subarray(0, 30));
  await client.waitFor(1, 10_000);
  assert.ok(Date.now() - startedMs >= 150, 'not before the timeout');
  assert.equal(client.responses[0]!.correlationId, -1);
  assert.equal(client.responses[0]!.errorCode, ErrorCode.REQUEST_TIMED_OUT);
  assert.ok(await client.waitClosed());
  await gone;
  assert.equal(budget.totalBytes, 0);
});

test('a partial frame that completes in time is answered normally', async (t) => {
  const { client } = await pair(t, (h) => echo(h), { partialFrameTimeoutMs: 2_000 });
  const frame = requestFrame(ApiKey.METADATA, 0, 9, {}, Buffer.alloc(100));
  client.write(frame.subarray(0, 30));
  await sleep(100);
  client.write(frame.subarray(30));
  await client.waitFor(1);
  assert.deepEqual([client.responses[0]!.correlationId, client.responses[0]!.errorCode], [9, 0]);
});

test('over the broker-wide partial-frame budget a connection with a partial frame stops reading until there is room', async (t) => {
  const budget = new PartialFrameBudget(1000);
  const a = await pair(t, (h) => echo(h), {}, budget);
  const b = await pair(t, (h) => echo(h), {}, budget);
  a.client.write(requestFrame(ApiKey.METADATA, 0, 1, {}, Buffer.alloc(5000)).subarray(0, 3000));
  await until('a paused over the budget', () => budget.exceeded && a.conn.socket.isPaused());
  // b holds no partial frame: whole frames are still served.
  b.client.write(requestFrame(ApiKey.METADATA, 0, 2, {}));
  await b.client.waitFor(1);
  const frame = requestFrame(ApiKey.METADATA, 0, 3, {}, Buffer.alloc(5000));
  b.client.write(frame.subarray(0, 100));
  await until('b paused with its partial frame', () => b.conn.socket.isPaused());
  b.client.write(frame.subarray(100));
  await sleep(100);
  assert.equal(b.client.responses.length, 1, 'b is not read while the budget is exceeded');
  a.client.close();
  await a.gone;
  await b.client.waitFor(2);
  assert.deepEqual([b.client.responses[1]!.correlationId, b.client.responses[1]!.errorCode], [3, 0]);
  await until('b\'s share released', () => budget.totalBytes === 0);
});

// FrameDecoder is imported so a change to its framing shows here too: the test frames must decode.
test('test frames are well formed', () => {
  let n = 0;
  new FrameDecoder(1 << 20).push(requestFrame(ApiKey.METADATA, 0, 1, {}), () => n++);
  assert.equal(n, 1);
});
