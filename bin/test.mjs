#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner and tsx. Node 20's runner does not
// expand globs or pick up .ts files by itself, hence this script.
// Usage: node bin/test.mjs [--unit] [path-filter ...]
//
// --unit runs only the in-process tests (npm run test:unit): no broker process, no etcd, no
// CLI child. A test file is in-process unless it, or a test/ module it imports (followed
// transitively through relative imports), imports node:child_process, which every way the
// suite starts a broker, etcd or a CLI goes through (test/helpers/*-process.ts, cli.ts). The
// classification is read from the code on every run, so it cannot drift from it: a unit test
// that starts using a broker process moves out of the unit set by itself. As a second check
// the unit run sets SLUICE_TEST_UNIT=1, and the process helpers refuse to start anything then.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');
const args = process.argv.slice(2);
const unit = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
})(testDir);

const IMPORT = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;
const spawnsMemo = new Map();
/** Whether a test module, or a test/ module it imports, imports node:child_process. */
function spawnsProcesses(path, seen = new Set()) {
  if (spawnsMemo.has(path)) return spawnsMemo.get(path);
  if (seen.has(path)) return false;
  seen.add(path);
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return false;
  }
  let spawns = false;
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec === 'node:child_process' || spec === 'child_process') spawns = true;
    else if (spec.startsWith('.')) {
      const target = resolve(dirname(path), spec);
      if (target.startsWith(testDir) && spawnsProcesses(target, seen)) spawns = true;
    }
    if (spawns) break;
  }
  spawnsMemo.set(path, spawns);
  return spawns;
}

let chosen = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (unit) chosen = chosen.filter((f) => !spawnsProcesses(join(root, f)));
if (chosen.length === 0) {
  console.error('no test files match', filters, unit ? '(in-process tests only)' : '');
  process.exit(1);
}
const env = unit ? { ...process.env, SLUICE_TEST_UNIT: '1' } : process.env;
const startedMs = Date.now();
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...chosen], { cwd: root, stdio: 'inherit', env });
if (unit) console.error(`test:unit: ${chosen.length} in-process test files in ${((Date.now() - startedMs) / 1000).toFixed(1)} s`);
process.exit(r.status ?? 1);
