/**
 * CLI parity with kcat / rpk (issue 12), each as a user runs it: a `sluice` child process per
 * command against a real broker process.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { repoRoot, startBroker, tempDir as makeTempDir, type BrokerProcess } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

let b: BrokerProcess;
let bs: string[];
before(async () => {
  b = await startBroker();
  bs = ['--bootstrap', b.bootstrap];
});
after(async () => {
  await b.stop();
  b.cleanup();
});

test('sluice --version, and --help lists every command and subcommand', async () => {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  for (const v of ['--version', '-V', 'version']) {
    const r = await sluice([v]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `sluice ${version}\n`);
  }
  const main = await sluice(['--help']);
  assert.equal(main.code, 0);
  // Each command's own usage line names its subcommands: all of them must be in the main help.
  for (const cmd of ['topic', 'group', 'dlq', 'delayed', 'cluster', 'bench']) {
    const own = await sluice([cmd, '--help']);
    assert.equal(own.code, 0, `${cmd} --help: ${own.stderr}`);
    const subs = new Set<string>();
    // From its usage lines (sluice cluster describe|rebalance|drain) and its Subcommands/Modes list.
    for (const m of own.stdout.matchAll(new RegExp(`sluice ${cmd} ([a-z][a-z0-9-]*(?:\\|[a-z][a-z0-9-]*)*)`, 'g'))) for (const s of m[1]!.split('|')) subs.add(s);
    const section = /^(?:Subcommands|Modes):\n([\s\S]*?)(?:\n\n|$)/m.exec(own.stdout)?.[1] ?? '';
    for (const m of section.matchAll(/^ {2}([a-z][a-z0-9-]*)\b/gm)) subs.add(m[1]!);
    assert.ok(subs.size > 0, `${cmd} --help names its subcommands`);
    const line = new RegExp(`^ {2}${cmd} (\\S+)`, 'm').exec(main.stdout);
    assert.ok(line, `main help lists ${cmd}`);
    const listed = new Set(line[1]!.split('|'));
    for (const s of subs) assert.ok(listed.has(s), `main help lists ${cmd} ${s} (has ${[...listed].join('|')})`);
  }
  for (const cmd of ['broker', 'produce', 'consume', 'health', 'version']) assert.match(main.stdout, new RegExp(`^ {2}${cmd}\\b`, 'm'));
  assert.match(main.stdout, /SLUICE_BOOTSTRAP/);
});

test('SLUICE_BOOTSTRAP is the default --bootstrap; the flag beats it', async () => {
  let r = await sluice(['topic', 'create', 'env-boot'], '', 60_000, { SLUICE_BOOTSTRAP: b.bootstrap });
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'list', '--names'], '', 60_000, { SLUICE_BOOTSTRAP: b.bootstrap });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^env-boot$/m);
  r = await sluice(['topic', 'list', '--names', '--bootstrap', '127.0.0.1:1'], '', 60_000, { SLUICE_BOOTSTRAP: b.bootstrap });
  assert.equal(r.code, 1, 'the flag wins over the environment');
});

test('topic create --if-not-exists, delete --if-exists, and errors said once, without stack traces', async () => {
  let r = await sluice(['topic', 'create', 'once', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'create', 'once', ...bs]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'sluice topic: TOPIC_ALREADY_EXISTS: topic once already exists\n');
  r = await sluice(['topic', 'create', 'once', '--if-not-exists', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Topic once already exists.\n');
  r = await sluice(['topic', 'delete', 'never-was', ...bs]);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  r = await sluice(['topic', 'delete', 'never-was', '--if-exists', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'list', '--bootstrap', '127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('topic list with partitions and replication; describe with defaults marked, messages, sizes, offsets, totals', async () => {
  let r = await sluice(['topic', 'create', 'described', '--partitions', '2', '--config', 'retention.ms=3600000', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['produce', 'described', '--partition', '1', ...bs], 'a\nb\nc\n');
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'list', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Topic\tPartitions\tReplicationFactor$/m);
  assert.match(r.stdout, /^described\t2\t1$/m);
  r = await sluice(['topic', 'describe', 'described', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Topic: described\tPartitions: 2\tReplicationFactor: 1$/m);
  assert.match(r.stdout, /^ {2}retention\.ms=3600000$/m, 'the override is not marked');
  assert.match(r.stdout, /^ {2}segment\.bytes=1073741824 \(default\)$/m);
  assert.match(r.stdout, /^ {2}cleanup\.policy=delete \(default\)$/m);
  assert.match(r.stdout, /^Partition\tLogStartOffset\tLogEndOffset\tMessages\tSizeBytes\tSegments\tLeader\tReplicas\tIsr$/m);
  assert.match(r.stdout, /^0\t0\t0\t0\t0\t1\t0\t0\t0$/m);
  const p1 = /^1\t0\t3\t3\t(\d+)\t1\t0\t0\t0$/m.exec(r.stdout);
  assert.ok(p1, r.stdout);
  assert.ok(Number(p1[1]) > 0);
  assert.match(r.stdout, new RegExp(`^Total\\t-\\t-\\t3\\t${p1[1]}\\t2$`, 'm'));
});

test('produce --key, --header, --timestamp, --verbose; consume --format json, --print-headers/--print-timestamp and a template', async () => {
  assert.equal((await sluice(['topic', 'create', 'hdrs', ...bs])).code, 0);
  let r = await sluice(['produce', 'hdrs', '--key', 'k1', '--header', 'trace=abc', '--header', 'empty=', '--timestamp', '2026-01-02T03:04:05Z', '--verbose', ...bs], 'one\ntwo\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'line 1\tpartition 0\toffset 0\nline 2\tpartition 0\toffset 1\n');
  const ts = Date.parse('2026-01-02T03:04:05Z');
  r = await sluice(['consume', 'hdrs', '--from-beginning', '--max-messages', '2', '--format', 'json', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines, [
    { topic: 'hdrs', partition: 0, offset: 0, timestamp: ts, key: 'k1', value: 'one', headers: { trace: 'abc', empty: '' } },
    { topic: 'hdrs', partition: 0, offset: 1, timestamp: ts, key: 'k1', value: 'two', headers: { trace: 'abc', empty: '' } },
  ]);
  r = await sluice(['consume', 'hdrs', '--from-beginning', '--max-messages', '1', '--print-offset', '--print-timestamp', '--print-headers', '--print-key', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '0:0\t2026-01-02T03:04:05.000Z\ttrace=abc,empty=\tk1\tone\n');
  r = await sluice(['consume', 'hdrs', '--from-beginning', '--max-messages', '2', '--format', '%t/%p@%o %T %k=%s [%h] %K/%S\\n', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `hdrs/0@0 ${ts} k1=one [trace=abc,empty=] 2/3\nhdrs/0@1 ${ts} k1=two [trace=abc,empty=] 2/3\n`);
  r = await sluice(['consume', 'hdrs', '--format', '%q', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown field %q/);
});

test('produce --format json: key, value, headers, partition and timestamp per line; a bad line is reported and skipped', async () => {
  assert.equal((await sluice(['topic', 'create', 'jsonl', '--partitions', '2', ...bs])).code, 0);
  const input = [
    JSON.stringify({ key: 'a', value: 'v1', headers: { h: '1' }, partition: 1, timestamp: 1000 }),
    JSON.stringify({ value: { nested: true }, headers: [['x', null]], partition: 1, timestamp: '2026-05-01T00:00:00Z' }),
    '',
    '{"value": "ok", "colour": 1}',
    'not json',
    JSON.stringify({ value: null, key: 'tomb', partition: 1 }),
  ].join('\n');
  let r = await sluice(['produce', 'jsonl', '--format', 'json', '--verbose', ...bs], `${input}\n`);
  assert.equal(r.code, 1, 'bad lines fail the command');
  assert.match(r.stderr, /line 4: unknown field "colour"/);
  assert.match(r.stderr, /line 5: not a JSON object/);
  assert.equal(r.stdout.trim().split('\n').length, 3);
  r = await sluice(['consume', 'jsonl', '--partition', '1', '--offset', '0', '--max-messages', '3', '--format', 'json', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((m) => [m.key, m.value, m.headers, m.timestamp]).slice(0, 2), [
    ['a', 'v1', { h: '1' }, 1000],
    [null, '{"nested":true}', { x: null }, Date.parse('2026-05-01T00:00:00Z')],
  ]);
  assert.deepEqual([got[2]!.key, got[2]!.value], ['tomb', null]);
});

test('consume --offset -N, --from-time (ISO and -1h) and --exit-at-end', async () => {
  assert.equal((await sluice(['topic', 'create', 'timed', '--partitions', '2', ...bs])).code, 0);
  const now = Date.now();
  const old = now - 3 * 3600_000;
  // Partition 0: 5 old messages then 5 recent; partition 1: empty.
  const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ value: `m${i}`, partition: 0, timestamp: i < 5 ? old + i : now + i }));
  let r = await sluice(['produce', 'timed', '--format', 'json', ...bs], lines.join('\n') + '\n');
  assert.equal(r.code, 0, r.stderr);

  // --exit-at-end: every partition (one empty) read to its end, no --max-messages needed.
  r = await sluice(['consume', 'timed', '--from-beginning', '--exit-at-end', ...bs], '', 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), lines.map((_, i) => `m${i}`));
  r = await sluice(['consume', 'timed', '--offset', '-3', '--exit-at-end', ...bs], '', 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['m7', 'm8', 'm9']);
  r = await sluice(['consume', 'timed', '--offset', '-100', '--exit-at-end', ...bs], '', 30_000);
  assert.equal(r.stdout.trim().split('\n').length, 10, 'clamped to the log start');
  r = await sluice(['consume', 'timed', '--from-time', '-1h', '--exit-at-end', ...bs], '', 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['m5', 'm6', 'm7', 'm8', 'm9']);
  r = await sluice(['consume', 'timed', '--from-time', new Date(old + 3).toISOString(), '--exit-at-end', ...bs], '', 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['m3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
  r = await sluice(['consume', 'timed', '--from-time', 'yesterday', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--from-time/);
});

test('group describe prints the lag per topic and in total', async () => {
  assert.equal((await sluice(['topic', 'create', 'lagged', '--partitions', '2', ...bs])).code, 0);
  const input = Array.from({ length: 10 }, (_, i) => `${i % 2}:v${i}`).join('\n') + '\n';
  for (const p of [0, 1]) {
    const part = input.split('\n').filter((l) => l.startsWith(`${p}:`)).join('\n') + '\n';
    assert.equal((await sluice(['produce', 'lagged', '--partition', String(p), ...bs], part)).code, 0);
  }
  let r = await sluice(['consume', 'lagged', '--group', 'lag-g', '--from-beginning', '--max-messages', '4', ...bs], '', 60_000);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['group', 'describe', 'lag-g', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^lagged\t6$/m);
  assert.match(r.stdout, /^Total lag: 6$/m);
});

test('consume --group fails (exit 1, one line) on a dead broker and a missing topic, quickly', async () => {
  const dead = net.createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const port = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  let t0 = Date.now();
  let r = await sluice(['consume', 'x', '--group', 'g', '--bootstrap', `127.0.0.1:${port}`], '', 30_000);
  assert.equal(r.code, 1);
  assert.ok(Date.now() - t0 < 20_000, `gave up after ${Date.now() - t0} ms`);
  assert.doesNotMatch(r.stderr, /Processed a total/);
  assert.match(r.stderr, /^sluice consume: .*(ECONNREFUSED|connect|reachable)/);
  t0 = Date.now();
  r = await sluice(['consume', 'no-such-topic', '--group', 'g', ...bs], '', 30_000);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'sluice consume: UNKNOWN_TOPIC_OR_PARTITION: topic no-such-topic\n');
});

test('broker start failures are one line without a stack trace: port in use, bad host, data dir not writable', async (t) => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    dirs.push(makeTempDir());
    return dirs.at(-1)!;
  };
  t.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const run = (args: string[]) => sluice(['broker', ...args], '', 30_000);
  let r = await run(['--port', String(b.port), '--data-dir', tempDir()]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${b.port} is already in use`));
  r = await run(['--port', '0', '--host', 'no-such-host.invalid', '--data-dir', tempDir()]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /does not resolve/);
  const file = join(tempDir(), 'a-file');
  writeFileSync(file, '');
  r = await run(['--port', '0', '--data-dir', join(file, 'data')]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /data dir .*ENOTDIR/);
});

test('topic alter --config / --delete-config: overrides change on a live topic and take effect at once', async () => {
  assert.equal((await sluice(['topic', 'create', 'altered', '--config', 'retention.ms=3600000', ...bs])).code, 0);
  let r = await sluice(['topic', 'alter', 'altered', '--config', 'max.message.bytes=200', '--config', 'segment.bytes=1048576', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Topic altered: max.message.bytes=200, segment.bytes=1048576.\n');
  r = await sluice(['topic', 'describe', 'altered', ...bs]);
  assert.match(r.stdout, /^ {2}max\.message\.bytes=200$/m);
  assert.match(r.stdout, /^ {2}segment\.bytes=1048576$/m);
  assert.match(r.stdout, /^ {2}retention\.ms=3600000$/m, 'other overrides stay');
  // In effect: a batch over 200 bytes is refused now.
  r = await sluice(['produce', 'altered', '--delivery-timeout-ms', '5000', ...bs], `${'x'.repeat(500)}\n`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /RECORD_TOO_LARGE|MESSAGE_TOO_LARGE|TOO_LARGE/);
  r = await sluice(['topic', 'alter', 'altered', '--delete-config', 'max.message.bytes', ...bs]);
  assert.equal(r.code, 0, r.stderr);
  r = await sluice(['topic', 'describe', 'altered', ...bs]);
  assert.match(r.stdout, /^ {2}max\.message\.bytes=8388608 \(default\)$/m);
  r = await sluice(['produce', 'altered', ...bs], `${'x'.repeat(500)}\n`);
  assert.equal(r.code, 0, r.stderr);
  // Refused whole: an unknown key, a bad value, min.insync.replicas above the replication factor.
  for (const bad of [['--config', 'colour=blue'], ['--config', 'retention.ms=soon'], ['--config', 'min.insync.replicas=2'], ['--delete-config', 'colour']]) {
    r = await sluice(['topic', 'alter', 'altered', '--config', 'segment.ms=1000', ...bad, ...bs]);
    assert.equal(r.code, 1, bad.join(' '));
    assert.match(r.stderr, /^sluice topic: INVALID_CONFIG: /);
  }
  r = await sluice(['topic', 'describe', 'altered', ...bs]);
  assert.match(r.stdout, /^ {2}segment\.ms=604800000 \(default\)$/m, 'nothing of a refused change applied');
  r = await sluice(['topic', 'alter', 'no-such', '--config', 'retention.ms=1', ...bs]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
});
