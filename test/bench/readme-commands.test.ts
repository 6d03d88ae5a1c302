// Every runnable bench command README shows (`npx sluice bench …`, `node bin/sluice.mjs bench
// …`) is complete as written: bench's own parser accepts it (no missing --topic/--messages).
// Usage lines with placeholders (`--topic T`) are not commands and are not checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBenchOptions } from '../../bench/options.ts';
import { parsePlotArgs, parseWorkloadArgs } from '../../bench/workload/cli.ts';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

test('README bench commands parse as written', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const commands = [...readme.matchAll(/(?:npx sluice|node bin\/sluice\.mjs) bench ([^`\n]+)/g)].map((m) => m[1]!.trim());
  assert.ok(commands.length >= 8, `found ${commands.length}`);
  for (const c of commands) {
    const args = c.split(/\s+/);
    // bench workload reads its file here too: a README command naming a missing or bad workload file fails.
    const parse = args[0] === 'workload' ? () => parseWorkloadArgs(args.slice(1)) : args[0] === 'plot' ? () => parsePlotArgs(args.slice(1)) : () => parseBenchOptions(args);
    assert.doesNotThrow(parse, `bench ${c}`);
  }
});
