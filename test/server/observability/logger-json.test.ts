// The JSON log format in-process: every line parses, whatever the fields hold (an Error, a
// BigInt, a cycle, a newline), and the level threshold applies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, setLogFormat, setLogLevel } from '../../../server/logger.ts';

/** Runs fn with process.stderr.write capturing into lines (restored afterwards). */
function capture(fn: () => void): string[] {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return lines;
}

test('json lines: one parseable object per line for any fields; text stays text; the level filters', () => {
  try {
    setLogFormat('json');
    setLogLevel('info');
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const log = createLogger('broker-7').child('net');
    const lines = capture(() => {
      log.debug('not written');
      log.info('plain');
      log.warn('odd fields', { error: new Error('disk\nfull'), big: 2n ** 70n, text: 'a "quoted"\nline', n: 3, nothing: null });
      log.error('a cycle', { cyclic, n: 1 });
    });
    assert.equal(lines.length, 3);
    for (const l of lines) {
      assert.ok(l.endsWith('\n') && l.indexOf('\n') === l.length - 1, `one line: ${l}`);
    }
    const [plain, odd, cycle] = lines.map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(plain), ['time', 'level', 'component', 'msg', 'fields']);
    assert.equal(plain.level, 'info');
    assert.equal(plain.component, 'broker-7.net');
    assert.deepEqual(plain.fields, {});
    assert.deepEqual(odd.fields, { error: 'disk\nfull', big: (2n ** 70n).toString(), text: 'a "quoted"\nline', n: 3, nothing: null });
    assert.equal(cycle.level, 'error');
    assert.equal(cycle.fields.n, 1, 'the other fields keep their type');
    assert.equal(cycle.fields.cyclic, '[object Object]');
    setLogFormat('text');
    const text = capture(() => log.info('plain', { k: 'v' }));
    assert.match(text[0]!, /^\S+Z INFO broker-7\.net: plain k="v"\n$/);
  } finally {
    setLogFormat('text');
    setLogLevel('info');
  }
});
