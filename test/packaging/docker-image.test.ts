// The Docker image, run. Where a Docker engine answers, the image is built and started for
// real (last test). Where none does (this machine has only the client), the image's own
// commands run outside Docker instead, from a copy of exactly the files the runtime stage
// COPYs, with exactly its ENV: the ENTRYPOINT + CMD (configured by environment only), the
// HEALTHCHECK command against a broker on a port other than 9292, and `sluice bench`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROKER_SETTINGS, envOf } from '../../server/config/broker-config.ts';
import { repoRoot } from '../helpers/broker-process.ts';
import { startEtcd } from '../helpers/etcd-process.ts';

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const joined = text.replace(/\\\n/g, ' ');
  for (const line of joined.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(t);
    assert.ok(m, `cannot read ${t}`);
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ') });
  }
  return out;
}

const dockerfile = instructions(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const lastFrom = dockerfile.map((i) => i.keyword).lastIndexOf('FROM');
const runtime = dockerfile.slice(lastFrom + 1);
const only = (keyword: string): Instruction => {
  const found = runtime.filter((i) => i.keyword === keyword);
  assert.equal(found.length, 1, `one ${keyword} in the runtime stage`);
  return found[0]!;
};
/** Exec form only: a shell form would need a shell to run the same way. */
const execForm = (i: Instruction): string[] => JSON.parse(i.args) as string[];
const imageEnv: Record<string, string> = {};
for (const e of runtime.filter((i) => i.keyword === 'ENV')) {
  for (const kv of e.args.split(' ')) {
    const at = kv.indexOf('=');
    assert.ok(at > 0, `ENV ${kv} is key=value`);
    imageEnv[kv.slice(0, at)] = kv.slice(at + 1);
  }
}
const entrypoint = execForm(only('ENTRYPOINT'));
const cmd = execForm(only('CMD'));
const healthcheck = (() => {
  const h = only('HEALTHCHECK').args;
  const at = h.indexOf('CMD ');
  return JSON.parse(h.slice(at + 4)) as string[];
})();
/** [source, destination] of each runtime-stage COPY from the build context. */
const copies = runtime
  .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
  .map((i) => {
    const words = i.args.split(' ').filter((w) => !w.startsWith('--'));
    return [words.slice(0, -1), words.at(-1)!] as const;
  });

test('the image is configured by environment, with defaults that work in it', () => {
  const names = new Set(BROKER_SETTINGS.map(envOf));
  for (const k of Object.keys(imageEnv).filter((k) => k.startsWith('SLUICE_'))) assert.ok(names.has(k), `${k} is a broker setting`);
  assert.equal(imageEnv.SLUICE_DATA_DIR, '/data', 'the data dir is the volume');
  assert.equal(imageEnv.SLUICE_HOST, '0.0.0.0', 'reachable through a published port');
  assert.equal(imageEnv.SLUICE_PORT, '9292');
  assert.match(only('VOLUME').args, /"\/data"/);
  // Arguments after the image name replace CMD: so CMD holds no setting the broker needs.
  assert.deepEqual(cmd, ['broker']);
  assert.deepEqual(entrypoint, ['node', 'bin/sluice.mjs']);
  // The healthcheck reads the broker's own configuration, never a fixed port.
  assert.ok(!healthcheck.some((a) => /9292/.test(a)), `no fixed port in ${healthcheck.join(' ')}`);
  assert.deepEqual(healthcheck.slice(0, 3), ['node', 'bin/sluice.mjs', 'health']);
});

test('application files are root-owned and read-only; only /data belongs to the runtime user', () => {
  for (const c of runtime.filter((i) => i.keyword === 'COPY')) assert.doesNotMatch(c.args, /--chown/, `COPY ${c.args} keeps root as owner`);
  const runs = runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
  assert.match(runs, /chmod -R a-w \/app/);
  assert.match(runs, /chown node:node \/data(\s|$)/);
  assert.doesNotMatch(runs.replace(/chown node:node \/data(\s|$)/, ''), /chown/, 'nothing else is given to node');
  const userAt = runtime.findIndex((i) => i.keyword === 'USER');
  assert.equal(runtime[userAt]!.args, 'node');
  assert.ok(runtime.slice(userAt).every((i) => i.keyword !== 'COPY' && i.keyword !== 'RUN'), 'nothing is written after USER node');
  assert.ok(copies.some(([src]) => src.includes('bench')), 'bench is in the image');
});

/** The files the image holds: the runtime-stage COPYs; node_modules (stage 1's npm ci --omit=dev) linked. */
function imageCopy(): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-image-'));
  const app = join(root, 'app');
  for (const [srcs, dest] of copies) {
    for (const src of srcs) {
      const to = dest.endsWith('/') || dest === './' ? join(app, dest, src) : join(app, dest);
      cpSync(join(repoRoot, src), to, { recursive: true });
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(app, 'node_modules'));
  return root;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** process.env without any SLUICE_* (the test runner's own must not leak in), plus the image's ENV and `extra`. */
function containerEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_') && v !== undefined) env[k] = v;
  return { ...env, ...imageEnv, ...extra };
}

interface Started {
  proc: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startFromImage(app: string, args: string[], env: Record<string, string>): Promise<Started> {
  const proc = spawn(entrypoint[0] === 'node' ? process.execPath : entrypoint[0]!, [...entrypoint.slice(1), ...args], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" within 30 s:\n${err}`)), 30_000);
      proc.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on [^\s]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`exited with ${proc.exitCode}:\n${err}`));
      });
    });
    return { proc, port, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

function runIn(app: string, argv: string[], env: Record<string, string>, timeoutMs = 60_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0] === 'node' ? process.execPath : argv[0]!, argv.slice(1), { cwd: app, env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("outside Docker: the image's ENTRYPOINT + CMD with environment-only configuration, its HEALTHCHECK on a non-default port, and bench", async (t) => {
  const root = imageCopy();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const app = join(root, 'app');
  const port = await freePort();
  assert.notEqual(port, 9292);
  // The container's environment, /data moved into the temp dir and the host kept on loopback.
  const env = containerEnv({ SLUICE_DATA_DIR: join(root, 'data'), SLUICE_HOST: '127.0.0.1', SLUICE_PORT: String(port) });
  const broker = await startFromImage(app, cmd, env);
  t.after(() => broker.stop());
  assert.equal(broker.port, port, 'the broker took SLUICE_PORT');

  // The healthcheck exactly as written (PID 1 outside a container is no broker: it falls back
  // to this environment, the image's), then aimed at the broker's real pid.
  let r = runIn(app, healthcheck, env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^ok: broker .* at 127\\.0\\.0\\.1:${port}$`, 'm'));
  const pidAt = healthcheck.indexOf('--broker-pid') + 1;
  assert.ok(pidAt > 0);
  const atPid = healthcheck.map((a, i) => (i === pidAt ? String(broker.proc.pid) : a));
  r = runIn(app, atPid, containerEnv({}));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`at 127\\.0\\.0\\.1:${port}$`, 'm'));

  // bench from the image's files.
  r = runIn(app, [...entrypoint, 'bench', 'produce', '--topic', 'image-bench', '--messages', '2000', '--size', '100', '--bootstrap', `127.0.0.1:${port}`, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { msgsPerSec: number };
  assert.ok(result.msgsPerSec > 0);
});

test('outside Docker: `docker run IMAGE broker --port P` (CMD replaced by flags) still has a healthy healthcheck', async (t) => {
  const root = imageCopy();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const app = join(root, 'app');
  const port = await freePort();
  const env = containerEnv({ SLUICE_DATA_DIR: join(root, 'data') });
  const broker = await startFromImage(app, ['broker', '--host', '127.0.0.1', '--port', String(port)], env);
  t.after(() => broker.stop());
  const pidAt = healthcheck.indexOf('--broker-pid') + 1;
  const atPid = healthcheck.map((a, i) => (i === pidAt ? String(broker.proc.pid) : a));
  const r = runIn(app, atPid, env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`at 127\\.0\\.0\\.1:${port}$`, 'm'));
});

test('with a Docker engine: build the image, run it on another host port, produce and consume through it', async (t) => {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (info.status !== 0) {
    t.skip(`no Docker engine here (docker info: ${(info.stderr || info.error?.message || '').trim().split('\n').at(-1)})`);
    return;
  }
  const tag = `sluice-test:${process.pid}`;
  const name = `sluice-test-${process.pid}`;
  const build = spawnSync('docker', ['build', '-t', tag, '.'], { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 });
  assert.equal(build.status, 0, build.stderr);
  t.after(() => void spawnSync('docker', ['rmi', '-f', tag]));
  const hostPort = await freePort();
  const run = spawnSync('docker', ['run', '-d', '--name', name, '-p', `127.0.0.1:${hostPort}:9292`, '-e', `SLUICE_ADVERTISED_PORT=${hostPort}`, tag], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  t.after(() => void spawnSync('docker', ['rm', '-f', name]));
  const deadline = Date.now() + 90_000;
  let health = '';
  while (Date.now() < deadline && health !== 'healthy') {
    await new Promise((r) => setTimeout(r, 1000));
    health = spawnSync('docker', ['inspect', '-f', '{{.State.Health.Status}}', name], { encoding: 'utf8' }).stdout.trim();
  }
  assert.equal(health, 'healthy');
  const bs = ['--bootstrap', `127.0.0.1:${hostPort}`];
  const cli = (args: string[], input = ''): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(repoRoot, 'bin/sluice.mjs'), ...args, ...bs], { input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(cli(['topic', 'create', 'docker-t']).status, 0);
  assert.equal(cli(['produce', 'docker-t'], 'a\nb\n').status, 0);
  const c = cli(['consume', 'docker-t', '--from-beginning', '--max-messages', '2']);
  assert.equal(c.stdout, 'a\nb\n');
  const write = spawnSync('docker', ['exec', name, 'touch', '/app/bin/x'], { encoding: 'utf8' });
  assert.notEqual(write.status, 0, 'the runtime user cannot modify the application');
  const bench = spawnSync('docker', ['exec', name, 'node', 'bin/sluice.mjs', 'bench', 'produce', '--topic', 'b', '--messages', '1000', '--size', '100', '--bootstrap', '127.0.0.1:9292'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(bench.status, 0, bench.stderr);
});

test('docker-compose.yml: etcd and 3 brokers configured by environment, each advertising its service name', () => {
  const text = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8');
  const names = new Set(BROKER_SETTINGS.map(envOf));
  for (const m of text.matchAll(/^\s+(SLUICE_[A-Z_]+):/gm)) assert.ok(names.has(m[1]!), `${m[1]} is a broker setting`);
  assert.match(text, /^ {2}etcd:\n {4}image: quay\.io\/coreos\/etcd:v3\.5\.\d+$/m);
  // Services: two-space keys under `services:`; each broker's block up to the next one.
  const servicesText = text.slice(text.indexOf('\nservices:\n'), text.indexOf('\nvolumes:\n'));
  const services = [...servicesText.matchAll(/^ {2}(sluice-\d+):\n((?: {4}.*\n|\s*\n)*)/gm)].map((m) => ({ name: m[1]!, body: m[2]! }));
  assert.equal(services.length, 3);
  const ids = new Set<string>();
  for (const { name, body } of services) {
    const env = (k: string): string | undefined => new RegExp(`^ {6}${k}: "?([^"\\n]+)"?$`, 'm').exec(body)?.[1];
    ids.add(env('SLUICE_BROKER_ID')!);
    assert.equal(env('SLUICE_METADATA_URL'), 'etcd://etcd:2379', name);
    assert.equal(env('SLUICE_ADVERTISED_HOST'), name, `${name} advertises its service name`);
    const port = env('SLUICE_PORT')!;
    assert.notEqual(port, '9292', 'the quickstart port stays free');
    assert.match(body, new RegExp(`ports: \\["127\\.0\\.0\\.1:${port}:${port}"\\]`), `${name} publishes its own port on loopback`);
    assert.match(body, new RegExp(`volumes: \\[${name}:/data\\]`));
  }
  assert.equal(ids.size, 3, 'distinct broker ids');
});

/** Each compose broker service's environment, as written. */
function composeBrokers(): Array<{ name: string; env: Record<string, string> }> {
  const text = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8');
  const servicesText = text.slice(text.indexOf('\nservices:\n'), text.indexOf('\nvolumes:\n'));
  return [...servicesText.matchAll(/^ {2}(sluice-\d+):\n((?: {4}.*\n|\s*\n)*)/gm)].map((m) => ({
    name: m[1]!,
    env: Object.fromEntries([...m[2]!.matchAll(/^ {6}(SLUICE_[A-Z_]+): "?([^"\n]+)"?$/gm)].map((e) => [e[1]!, e[2]!])),
  }));
}

test('outside Docker: the compose brokers, configured by their compose environment, form one cluster over etcd', async (t) => {
  const root = imageCopy();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const app = join(root, 'app');
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const brokers: Started[] = [];
  t.after(() => Promise.all(brokers.map((b) => b.stop())));
  for (const { name, env } of composeBrokers()) {
    // As written, except what only Docker provides: the etcd and broker host names, and the
    // fixed ports (taken by other processes here, perhaps): the test's etcd, loopback, free ports.
    assert.equal(env.SLUICE_METADATA_URL, 'etcd://etcd:2379');
    const port = await freePort();
    const e = containerEnv({ ...env, SLUICE_METADATA_URL: `etcd://${etcd.endpoints}`, SLUICE_HOST: '127.0.0.1', SLUICE_PORT: String(port), SLUICE_ADVERTISED_HOST: '127.0.0.1', SLUICE_DATA_DIR: join(root, name) });
    brokers.push(await startFromImage(app, cmd, e));
  }
  const bootstrap = brokers.map((b) => `127.0.0.1:${b.port}`).join(',');
  const env = containerEnv({ SLUICE_BOOTSTRAP: bootstrap });
  const deadline = Date.now() + 30_000;
  let r = runIn(app, [...entrypoint, 'cluster', 'describe'], env);
  while (Date.now() < deadline && !/^3\t/m.test(r.stdout)) {
    await new Promise((res) => setTimeout(res, 500));
    r = runIn(app, [...entrypoint, 'cluster', 'describe'], env);
  }
  assert.deepEqual([...r.stdout.matchAll(/^(\d+)\t127\.0\.0\.1\t\d+$/gm)].map((m) => m[1]).sort(), ['1', '2', '3'], r.stdout + r.stderr);
  r = runIn(app, [...entrypoint, 'topic', 'create', 'compose-t', '--replication-factor', '3', '--config', 'min.insync.replicas=2'], env);
  assert.equal(r.code, 0, r.stderr);
  const produce = spawnSync(process.execPath, [entrypoint[1]!, 'produce', 'compose-t'], { cwd: app, env, input: 'one\ntwo\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(produce.status, 0, produce.stderr);
  r = runIn(app, [...entrypoint, 'consume', 'compose-t', '--from-beginning', '--max-messages', '2'], env);
  assert.equal(r.stdout, 'one\ntwo\n', r.stderr);
});
