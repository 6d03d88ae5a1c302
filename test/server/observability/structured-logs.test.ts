// Structured logs (issue 12): --log-format json|text and --log-level, as flags and as
// SLUICE_LOG_FORMAT / SLUICE_LOG_LEVEL, against real broker processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, startBroker } from '../../helpers/broker-process.ts';

interface JsonLine {
  time: string;
  level: string;
  component: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** Every stderr line, each parsed as JSON (throws, naming the line, if one is not). */
function jsonLines(stderr: string): JsonLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as JsonLine;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

test('a broker started with --log-format json writes one parseable JSON object per line: time, level, component, msg, fields', async () => {
  const broker = await startBroker({ args: ['--log-format', 'json', '--log-level', 'debug'] });
  try {
    // Stop it too: the stop path logs, and SIGTERM must not break the format.
    assert.equal(await broker.stop(), 0, broker.log());
    const lines = jsonLines(broker.log());
    assert.ok(lines.length >= 3, broker.log());
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ['time', 'level', 'component', 'msg', 'fields']);
      assert.ok(!Number.isNaN(Date.parse(l.time)) && l.time.endsWith('Z'), l.time);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level), l.level);
      assert.equal(typeof l.component, 'string');
      assert.equal(typeof l.msg, 'string');
      assert.equal(typeof l.fields, 'object');
    }
    const started = lines.find((l) => l.msg === 'started');
    assert.ok(started, 'a "started" line');
    assert.equal(started.level, 'info');
    assert.equal(started.component, 'broker-0');
    assert.equal(started.fields.dataDir, broker.dataDir);
    assert.equal(typeof started.fields.port, 'number');
    // debug level: debug lines are written (partition logs of the offsets topic open at debug).
    assert.ok(lines.some((l) => l.level === 'debug'), 'debug lines at --log-level debug');
    assert.ok(lines.some((l) => l.msg === 'stopped cleanly'));
  } finally {
    await broker.kill();
    broker.cleanup();
  }
});

test('the environment sets the format and the level (SLUICE_LOG_FORMAT, SLUICE_LOG_LEVEL); lines below the level are not written', async () => {
  const broker = await startBroker({ env: { SLUICE_LOG_FORMAT: 'json', SLUICE_LOG_LEVEL: 'warn' } });
  try {
    assert.equal(await broker.stop(), 0, broker.log());
    // A clean start and stop logs only at info and debug: at warn nothing at all.
    const lines = jsonLines(broker.log());
    assert.deepEqual(lines.filter((l) => l.level === 'info' || l.level === 'debug'), []);
  } finally {
    await broker.kill();
    broker.cleanup();
  }
  const info = await startBroker({ args: ['--log-format', 'json'] });
  try {
    assert.equal(await info.stop(), 0, info.log());
    const lines = jsonLines(info.log());
    assert.ok(lines.some((l) => l.msg === 'started' && l.level === 'info'));
    assert.deepEqual(lines.filter((l) => l.level === 'debug'), [], 'no debug lines at the default level info');
  } finally {
    await info.kill();
    info.cleanup();
  }
});

test('text stays the default format', async () => {
  const broker = await startBroker();
  try {
    assert.equal(await broker.stop(), 0, broker.log());
    assert.match(broker.log(), /^\S+Z INFO broker-0: started dataDir=/m);
  } finally {
    await broker.kill();
    broker.cleanup();
  }
});

test('a bad format or level is refused with one line naming the flag or variable and the choices, exit code 2', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), 'broker', '--port', '0', '--data-dir', '/nonexistent/never-created', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['--log-format', 'xml'], {}, 'sluice broker: --log-format must be one of text, json, got "xml"\n'],
    [[], { SLUICE_LOG_FORMAT: 'yaml' }, 'sluice broker: SLUICE_LOG_FORMAT must be one of text, json, got "yaml"\n'],
    [['--log-level', 'verbose'], {}, 'sluice broker: --log-level must be one of debug, info, warn, error, got "verbose"\n'],
    [[], { SLUICE_LOG_LEVEL: 'trace' }, 'sluice broker: SLUICE_LOG_LEVEL must be one of debug, info, warn, error, got "trace"\n'],
  ];
  for (const [args, env, expected] of cases) {
    const r = run(args, env);
    assert.equal(r.status, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`);
    assert.equal(r.stderr, expected);
  }
});
