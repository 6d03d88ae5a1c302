// No Docker engine runs here, so the image is checked statically: the Dockerfile must parse
// without a single diagnostic, and keep the properties the README promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import { repoRoot } from '../helpers/broker-process.ts';

const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');

test('Dockerfile has no lint diagnostics', () => {
  const diagnostics = validate(text);
  assert.deepEqual(diagnostics.map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
});

test('Dockerfile is multi-stage, non-root, with volume, port, healthcheck and stop signal', () => {
  assert.ok((text.match(/^FROM node:20/gm) ?? []).length >= 2, 'two stages on an official Node base');
  assert.match(text, /^USER node$/m);
  assert.match(text, /^VOLUME \["\/data"\]$/m);
  assert.match(text, /^EXPOSE 9292$/m);
  assert.match(text, /^HEALTHCHECK /m);
  assert.match(text, /^STOPSIGNAL SIGTERM$/m);
});

test('every path the Dockerfile copies exists', () => {
  for (const m of text.matchAll(/^COPY (?:--\S+ )*(.+) \S+$/gm)) {
    for (const p of m[1]!.split(' ')) if (!p.startsWith('/')) assert.ok(existsSync(join(repoRoot, p)), `${p} is missing`);
  }
});
