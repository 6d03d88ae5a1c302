// Memory and time one client can take through its connections (issue item 10), against real
// broker processes over loopback: half-received frames share a broker-wide byte bound and
// must complete within partialFrameTimeoutMs; connections beyond connectionsMax are closed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { gcEnv, memoryReport, peakMiB, resetPeak, rssMiB, watchRss } from '../helpers/proc-memory.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';

const MiB = 1024 * 1024;
const started: BrokerProcess[] = [];

after(async () => {
  for (const b of started) {
    const code = await b.stop();
    b.cleanup();
    assert.equal(code, 0, `broker exited with ${code}:\n${b.log()}`);
  }
});

async function broker(args: string[]): Promise<BrokerProcess> {
  const b = await startBroker({ args, env: gcEnv() });
  started.push(b);
  return b;
}

async function answersApiVersions(port: number): Promise<void> {
  const s = await RawSocket.connect(port);
  try {
    s.write(requestFrame(ApiKey.API_VERSIONS, 0, 77, {}));
    await s.waitFor(1, 10_000);
    assert.equal(s.responses[0]?.correlationId, 77);
    assert.equal(s.responses[0]?.errorCode, 0);
  } finally {
    s.close();
  }
}

const PARTIAL_TOTAL_MAX = 64 * MiB;
const PARTIAL_TIMEOUT_MS = 3_000;
const HALF = Buffer.alloc(32 * MiB, 0x5a); // shared by every connection: the test holds it once

/** 16 connections each announce a 64 MiB frame and send 32 MiB of it: 512 MiB if all were kept. */
async function halfFrameAttack(b: BrokerProcess, limitMiB: number): Promise<{ peak: number; heldMiB: number; sockets: RawSocket[] }> {
  const sockets: RawSocket[] = [];
  for (let i = 0; i < 16; i++) {
    const s = await RawSocket.connect(b.port);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(64 * MiB, 0);
    s.write(len);
    s.write(HALF);
    sockets.push(s);
  }
  // Observe while the frames are held, before the timeout ends them.
  const peak = await watchRss(b.proc.pid!, PARTIAL_TIMEOUT_MS / 2, limitMiB, 'half-frames attack');
  const held = await memoryReport(b.proc.pid!, b.log);
  return { peak: Math.max(peak, peakMiB(b.proc.pid!)), heldMiB: held.arrayBuffersBytes / MiB, sockets };
}

test('half-received frames: bounded in total, closed with REQUEST_TIMED_OUT after partialFrameTimeoutMs, released', async () => {
  const b = await broker(['--partial-frame-bytes-total-max', String(PARTIAL_TOTAL_MAX), '--partial-frame-timeout-ms', String(PARTIAL_TIMEOUT_MS)]);
  const pid = b.proc.pid!;
  await answersApiVersions(b.port);
  const before = await memoryReport(pid, b.log);
  const base = rssMiB(pid);
  resetPeak(pid);
  // The bound is 64 MiB plus one 64 KiB socket chunk per connection; 250 MiB leaves room for
  // the runtime, against 512 MiB without any bound.
  const { peak, heldMiB: during, sockets } = await halfFrameAttack(b, base + 250);
  console.log(`# half frames: broker RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; arrayBuffers while held ${during.toFixed(1)} MiB`);
  // The report sees the partial frames (so "released" below means something), within the bound.
  assert.ok(during > 16 && during < PARTIAL_TOTAL_MAX / MiB + 16, `${during.toFixed(1)} MiB held during the attack`);
  const t0 = Date.now();
  for (const s of sockets) {
    assert.ok(await s.waitClosed(PARTIAL_TIMEOUT_MS + 15_000), 'the broker closes a connection whose frame does not complete');
    const r = s.responses[0];
    assert.ok(r, 'the broker said why');
    assert.equal(r.correlationId, -1);
    assert.equal(r.errorCode, ErrorCode.REQUEST_TIMED_OUT);
    s.close();
  }
  console.log(`# all 16 closed within ${Date.now() - t0} ms after the observation window`);
  assert.match(b.log(), /request frame not completed in time/);
  await answersApiVersions(b.port);
  // Released: after a full GC the broker's buffers are back where they were. V8 frees the
  // memory of dead ArrayBuffers in the background after a GC, hence a few bounded tries.
  let heldMiB = Infinity;
  for (let i = 0; i < 50 && heldMiB >= 8; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    heldMiB = ((await memoryReport(pid, b.log)).arrayBuffersBytes - before.arrayBuffersBytes) / MiB;
  }
  console.log(`# arrayBuffers after close: ${heldMiB.toFixed(1)} MiB above the start`);
  assert.ok(heldMiB < 8, `${heldMiB.toFixed(1)} MiB of buffers still held after every connection closed`);
});

test('a frame that arrives slowly but within partialFrameTimeoutMs is served', async () => {
  const b = started[0] ?? (await broker(['--partial-frame-timeout-ms', String(PARTIAL_TIMEOUT_MS)]));
  const s = await RawSocket.connect(b.port);
  try {
    const frame = requestFrame(ApiKey.API_VERSIONS, 0, 9, {});
    s.write(frame.subarray(0, 6));
    await new Promise((r) => setTimeout(r, PARTIAL_TIMEOUT_MS / 3));
    s.write(frame.subarray(6));
    await s.waitFor(1, 10_000);
    assert.equal(s.responses[0]?.correlationId, 9);
    assert.equal(s.responses[0]?.errorCode, 0);
    assert.equal(s.closed, false);
  } finally {
    s.close();
  }
});

test('connections beyond connectionsMax are closed at once; a freed slot is usable again', async () => {
  const b = await broker(['--connections-max', '4']);
  const open: RawSocket[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const s = await RawSocket.connect(b.port);
      s.write(requestFrame(ApiKey.API_VERSIONS, 0, i, {}));
      await s.waitFor(1, 10_000);
      assert.equal(s.responses[0]?.errorCode, 0);
      open.push(s);
    }
    const extra = await RawSocket.connect(b.port);
    extra.write(requestFrame(ApiKey.API_VERSIONS, 0, 99, {}));
    assert.ok(await extra.waitClosed(10_000), 'the fifth connection is closed');
    assert.equal(extra.responses.length, 0, 'and not served');
    extra.close();
    assert.match(b.log(), /connection limit reached/);
    // The four still work.
    for (const s of open) {
      s.write(requestFrame(ApiKey.API_VERSIONS, 0, 5, {}));
      await s.waitFor(2, 10_000);
      assert.equal(s.responses[1]?.errorCode, 0);
    }
    open.pop()!.close();
    // The broker sees the close asynchronously: retry a few times, bounded.
    let served = false;
    for (let attempt = 0; attempt < 50 && !served; attempt++) {
      const s = await RawSocket.connect(b.port);
      s.write(requestFrame(ApiKey.API_VERSIONS, 0, 6, {}));
      await s.waitFor(1, 5_000).catch(() => {});
      served = s.responses.length === 1;
      if (served) open.push(s);
      else {
        s.close();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(served, 'a connection is accepted once one closed');
  } finally {
    for (const s of open) s.close();
  }
});
