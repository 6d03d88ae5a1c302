// Event-loop delay as numbers: in-process against real blocking work, and in a real broker
// process paused with SIGSTOP (the loop cannot run, exactly as during a long synchronous task).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Logger } from '../../../server/logger.ts';
import { EventLoopDelayMonitor } from '../../../server/observability/event-loop-delay.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';

function capturingLogger(lines: string[]): Logger {
  const logger: Logger = {
    debug: (m, f) => lines.push(`DEBUG ${m} ${JSON.stringify(f ?? {})}`),
    info: (m, f) => lines.push(`INFO ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => lines.push(`WARN ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => lines.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
    child: () => logger,
  };
  return logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: nothing else runs on this thread meanwhile
  }
}

test('a blocked event loop shows up in the numbers and as a stall warning; windows rotate', async () => {
  const lines: string[] = [];
  const m = new EventLoopDelayMonitor({ resolutionMs: 10, windowMs: 1500, checkIntervalMs: 100, stallWarnMs: 200 }, capturingLogger(lines));
  m.start();
  try {
    assert.deepEqual(m.snapshot().lastWindow.samples, 0);
    await sleep(200);
    blockFor(400);
    await sleep(300);
    const during = m.snapshot();
    // Generous margins: the machine is shared; the loop was blocked at least 400 ms.
    assert.ok(during.currentWindow.maxMs >= 300, `max ${during.currentWindow.maxMs} ms after a 400 ms block`);
    assert.ok(during.currentWindow.samples > 0);
    assert.ok(Number.isFinite(during.currentWindow.p50Ms) && Number.isFinite(during.currentWindow.p99Ms));
    assert.ok(during.currentWindow.p50Ms <= during.currentWindow.p99Ms && during.currentWindow.p99Ms <= during.currentWindow.maxMs);
    assert.equal(during.stallsTotal, 1);
    assert.ok(lines.some((l) => l.startsWith('WARN event loop stalled')), lines.join('\n'));
    // The window closes: its numbers move to lastWindow and are logged at debug level.
    const deadline = Date.now() + 10_000;
    while (m.snapshot().lastWindow.samples === 0 && Date.now() < deadline) await sleep(100);
    const after = m.snapshot();
    assert.ok(after.lastWindow.maxMs >= 300, `last window max ${after.lastWindow.maxMs}`);
    assert.ok(after.maxMsSinceStart >= 300);
    assert.ok(lines.some((l) => l.startsWith('DEBUG event-loop delay') && /"p99Ms":[\d.]+/.test(l)), lines.join('\n'));
  } finally {
    m.stop();
  }
});

test('a broker whose event loop is held reports the stall in its log', { timeout: 60_000 }, async () => {
  const broker = await startBroker({ args: ['--event-loop-stall-warn-ms', '500'], env: { SLUICE_LOG_LEVEL: 'info' } });
  try {
    await sleep(500);
    broker.proc.kill('SIGSTOP');
    await sleep(1500);
    broker.proc.kill('SIGCONT');
    const deadline = Date.now() + 15_000;
    let m: RegExpExecArray | null = null;
    while (!(m = /WARN broker-0\.event-loop: event loop stalled[^\n]* maxMs=([\d.]+)/.exec(broker.log())) && Date.now() < deadline) await sleep(100);
    assert.ok(m, `no stall warning in the broker log:\n${broker.log()}`);
    assert.ok(Number(m[1]) >= 1000, `reported ${m[1]} ms for a 1500 ms pause`);
  } finally {
    broker.proc.kill('SIGCONT');
    await broker.stop();
    broker.cleanup();
  }
});

test('--event-loop-stall-warn-ms 0 is refused with a clear message', async () => {
  const dataDir = tempDir();
  try {
    await assert.rejects(startBroker({ dataDir, args: ['--event-loop-stall-warn-ms', '0'], startTimeoutMs: 20_000 }), /--event-loop-stall-warn-ms is 0, below its minimum 1/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
