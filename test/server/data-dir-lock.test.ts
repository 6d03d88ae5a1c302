// One data directory, one broker: real broker processes on real directories. A second broker
// on a dir in use refuses with one line naming the holder, before it reads, recovers or
// writes any file there; a lock left by kill -9 (or naming a reused pid) is taken over at
// once; of brokers started at the same instant exactly one gets the dir; and a start that
// fails on a port in use leaves the dir as it found it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ApiVersionsResponse } from '../../protocol/apis/api-versions.ts';
import { Connection } from '../../client/connection.ts';
import { Broker } from '../../server/broker.ts';
import { defaultBrokerConfig } from '../../server/config/broker-config.ts';
import { DataDirLockedError, FOREIGN_LOCK_EXPIRY_MS, LOCK_FILE, LOCK_RENEW_INTERVAL_MS, processStartTicks } from '../../server/data-dir-lock.ts';
import { repoRoot, startBroker, tempDir } from '../helpers/broker-process.ts';
import { countMessages, createTopic, produceMessages } from '../helpers/messages.ts';

const spawned = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of spawned) p.kill('SIGKILL');
});

type Outcome = { listening: true; port: number } | { listening: false; code: number | null; stderr: string };

/** A broker process whose start may fail: resolves when it listens or exits (bounded). */
function launch(dataDir: string, port = 0): { proc: ChildProcess; outcome: Promise<Outcome>; exited: Promise<void> } {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => { spawned.delete(proc); resolve(code); }));
  const outcome = new Promise<Outcome>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`broker neither listened nor exited within 60 s:\n${stderr}`));
    }, 60_000);
    proc.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening on [^\s]+:(\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ listening: true, port: Number(m[1]) });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      resolve({ listening: false, code, stderr });
    });
  });
  return { proc, outcome, exited: exited.then(() => {}) };
}

async function stopProc(p: { proc: ChildProcess; exited: Promise<void> }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGCONT');
  p.proc.kill(signal);
  const t = setTimeout(() => p.proc.kill('SIGKILL'), 15_000);
  await p.exited;
  clearTimeout(t);
}

/** Every file under dir (but `except`) with its size and content hash: "touched" shows as a difference. */
function snapshot(dir: string, except: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  (function walk(d: string, rel: string) {
    for (const name of readdirSync(d).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (except.includes(r)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, r);
      else out[r] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  })(dir, '');
  return out;
}

test('a second broker on a data dir in use refuses in one line, touching nothing; the first keeps every acknowledged message', async () => {
  const dataDir = tempDir();
  const first = await startBroker({ dataDir });
  let second: ReturnType<typeof launch> | undefined;
  try {
    const c = await Connection.connect(first.host, first.port);
    await createTopic(c, 'acked');
    await produceMessages(c, 'acked', 1000, 'first');
    // Frozen, the holder is alive but cannot write: any change in the dir is the second's doing.
    first.proc.kill('SIGSTOP');
    const before = snapshot(dataDir);
    second = launch(dataDir);
    const outcome = await second.outcome;
    assert.equal(outcome.listening, false, 'the second broker must not start on a dir in use');
    if (outcome.listening) return;
    assert.equal(outcome.code, 1);
    const lines = outcome.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${outcome.stderr}`);
    assert.match(lines[0]!, new RegExp(`in use by sluice broker pid ${first.proc.pid} on host ${os.hostname()} \\(listening on 127\\.0\\.0\\.1:${first.port}`));
    assert.deepEqual(snapshot(dataDir), before, 'the refused broker changed files in the data dir');
    first.proc.kill('SIGCONT');
    assert.equal(await countMessages(c, 'acked'), 1000);
    await produceMessages(c, 'acked', 1000, 'more');
    assert.equal(await countMessages(c, 'acked'), 2000);
    c.close();
  } finally {
    first.proc.kill('SIGCONT');
    if (second) await stopProc(second, 'SIGKILL');
    assert.equal(await first.stop(), 0, first.log());
    first.cleanup();
  }
});

test('a restart right after kill -9 of the holder takes the stale lock over at once, and keeps the data', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  try {
    const c = await Connection.connect(b.host, b.port);
    await createTopic(c, 'kept');
    await produceMessages(c, 'kept', 500, 'before-kill');
    c.close();
    await b.kill();
    assert.ok(readFileSync(join(dataDir, LOCK_FILE), 'utf8').includes(`"pid":${b.proc.pid}`), 'kill -9 leaves the lock behind');
    b = await startBroker({ dataDir, startTimeoutMs: 30_000 });
    assert.match(b.log(), /took over a stale data dir lock/);
    const c2 = await Connection.connect(b.host, b.port);
    assert.equal(await countMessages(c2, 'kept'), 500);
    c2.close();
    assert.equal(await b.stop(), 0);
    assert.throws(() => statSync(join(dataDir, LOCK_FILE)), /ENOENT/, 'a clean stop removes the lock');
  } finally {
    await b.kill();
    b.cleanup();
  }
});

test('a lock naming a live pid is stale when that pid started at another time (pid reuse), and held when it did not', async (t) => {
  const ticks = processStartTicks(process.pid);
  if (ticks < 0) {
    t.skip('no /proc: process start times cannot be read on this platform');
    return;
  }
  const dataDir = tempDir();
  // This test process stands in for an unrelated process that got the dead holder's pid.
  const lock = (startTicks: number) => JSON.stringify({ pid: process.pid, hostname: os.hostname(), bootId: '', startTicks, host: '127.0.0.1', port: 1, dataDir, token: 'old', acquiredAtMs: 0 });
  try {
    writeFileSync(join(dataDir, LOCK_FILE), lock(ticks));
    const refused = await launch(dataDir).outcome;
    assert.equal(refused.listening, false, 'a lock whose pid and start time match a live process is held');
    assert.match((refused as { stderr: string }).stderr, new RegExp(`in use by sluice broker pid ${process.pid}`));
    writeFileSync(join(dataDir, LOCK_FILE), lock(ticks + 1));
    const b = launch(dataDir);
    const started = await b.outcome;
    try {
      assert.equal(started.listening, true, `pid reuse must not block a start:\n${(started as { stderr?: string }).stderr ?? ''}`);
    } finally {
      await stopProc(b);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('of three brokers started at the same instant exactly one gets the dir, on a fresh dir and on a stale lock', async () => {
  const dataDir = tempDir();
  try {
    for (const round of ['fresh', 'stale lock']) {
      if (round === 'stale lock') {
        const victim = await startBroker({ dataDir });
        await victim.kill();
      }
      const contenders = [launch(dataDir), launch(dataDir), launch(dataDir)];
      try {
        const outcomes = await Promise.all(contenders.map((x) => x.outcome));
        const winners = outcomes.filter((o) => o.listening);
        assert.equal(winners.length, 1, `${round}: ${JSON.stringify(outcomes)}`);
        for (const o of outcomes) if (!o.listening) assert.match(o.stderr, /is in use by sluice broker pid \d+/, round);
      } finally {
        for (const x of contenders) await stopProc(x);
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a start that fails on a port in use leaves the data dir untouched (no recovery, no marker removed)', async () => {
  const dataDir = tempDir();
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const busyPort = (blocker.address() as net.AddressInfo).port;
  try {
    const b = await startBroker({ dataDir, args: [] });
    const c = await Connection.connect(b.host, b.port);
    await createTopic(c, 'torn');
    await produceMessages(c, 'torn', 300, 'x');
    c.close();
    await b.kill();
    // A torn tail: recovery would cut it off, so a start that recovers shows in the snapshot.
    const segment = readdirSync(join(dataDir, 'torn-0')).find((f) => f.endsWith('.log'))!;
    appendFileSync(join(dataDir, 'torn-0', segment), Buffer.alloc(37, 0xab));
    const before = snapshot(dataDir, [LOCK_FILE]);
    const failed = await launch(dataDir, busyPort).outcome;
    assert.equal(failed.listening, false);
    assert.match((failed as { stderr: string }).stderr, /EADDRINUSE/);
    assert.deepEqual(snapshot(dataDir, [LOCK_FILE]), before, 'the failed start changed files in the data dir');
    assert.throws(() => statSync(join(dataDir, LOCK_FILE)), /ENOENT/, 'the failed start gave the lock back');
  } finally {
    blocker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('two brokers in one process exclude each other too', async () => {
  const dataDir = tempDir();
  const a = new Broker(defaultBrokerConfig({ dataDir, port: 0 }));
  try {
    await a.start();
    const b = new Broker(defaultBrokerConfig({ dataDir, port: 0 }));
    try {
      await assert.rejects(b.start(), (e: unknown) => e instanceof DataDirLockedError && /held by this process/.test(e.message));
    } finally {
      await b.stop().catch(() => {}); // only does something if it wrongly started
    }
  } finally {
    await a.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a lock from another hostname (a re-created container, another machine) holds while renewed and is stale once not', async () => {
  const dataDir = tempDir();
  const lockPath = join(dataDir, LOCK_FILE);
  const foreign = JSON.stringify({ pid: 1, hostname: `not-${os.hostname()}`, bootId: '', startTicks: 1, host: '10.0.0.9', port: 9292, dataDir, token: 'foreign', acquiredAtMs: 0 });
  try {
    writeFileSync(lockPath, foreign);
    const refused = await launch(dataDir).outcome;
    assert.equal(refused.listening, false, 'a freshly renewed foreign lock is held');
    assert.match((refused as { stderr: string }).stderr, /in use by sluice broker pid 1 on host not-.* \(listening on 10\.0\.0\.9:9292.*renewed \d+ s ago/);
    const old = new Date(Date.now() - FOREIGN_LOCK_EXPIRY_MS - 5_000);
    utimesSync(lockPath, old, old);
    const b = launch(dataDir);
    try {
      const started = await b.outcome;
      assert.equal(started.listening, true, `an expired foreign lock must not block a start:\n${(started as { stderr?: string }).stderr ?? ''}`);
      // The new holder renews its lock, so that a broker elsewhere sees it alive.
      const before = statSync(lockPath).mtimeMs;
      await new Promise((r) => setTimeout(r, LOCK_RENEW_INTERVAL_MS * 2 + 500));
      assert.ok(statSync(lockPath).mtimeMs > before, 'the holder renews the lock file');
    } finally {
      await stopProc(b);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a client that connects while the broker is still starting (port bound first) waits and is answered', async () => {
  const dataDir = tempDir();
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  try {
    // Many partitions after a kill -9: start-up recovers each, which takes a while.
    const first = await startBroker({ dataDir });
    const c0 = await Connection.connect(first.host, first.port);
    await createTopic(c0, 'many', 200);
    c0.close();
    await first.kill();
    const b = launch(dataDir, port);
    let listeningAtMs = Infinity;
    void b.outcome.then(() => (listeningAtMs = Date.now()));
    try {
      let c: Connection | undefined;
      for (let i = 0; i < 2_000 && !c && listeningAtMs === Infinity; i++) {
        c = await Connection.connect('127.0.0.1', port, { connectTimeoutMs: 1000, requestTimeoutMs: 60_000 }).catch(() => undefined);
        if (!c) await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(c, 'connected');
      assert.equal(listeningAtMs, Infinity, 'the port is bound before the logs are loaded, so the client got in during start-up');
      const r = await c!.send<ApiVersionsResponse>(ApiKey.API_VERSIONS, {});
      assert.ok(r.control.apis.length > 0);
      c!.close();
    } finally {
      await stopProc(b);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
