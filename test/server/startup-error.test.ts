// describeStartupError: the one-line messages `sluice broker` prints for failures that are the
// operator's to fix (the process tests in test/cli/cli-parity.test.ts cover the ones a test can
// cause as root: port in use, bad host, a file where the data dir should be). Here the rest,
// from Node's own errors: a data dir without permission, a privileged port, a read-only disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeStartupError } from '../../server/startup-error.ts';

const config = { host: '127.0.0.1', port: 80, dataDir: '/srv/sluice' };
const sysError = (code: string, fields: Record<string, unknown>): Error => Object.assign(new Error(`${code}: something`), { code, ...fields });

test('file-system failures name the data dir, the path and the code', () => {
  assert.equal(
    describeStartupError(sysError('EACCES', { syscall: 'mkdir', path: '/srv/sluice' }), config),
    'data dir "/srv/sluice": cannot mkdir "/srv/sluice" (EACCES); choose a writable --data-dir / SLUICE_DATA_DIR',
  );
  assert.match(describeStartupError(sysError('EROFS', { syscall: 'open', path: '/srv/sluice/meta.json' }), config)!, /cannot open "\/srv\/sluice\/meta\.json" \(EROFS\)/);
});

test('listen failures name the address', () => {
  assert.match(describeStartupError(sysError('EACCES', { syscall: 'listen', address: '127.0.0.1', port: 80 }), config)!, /not allowed to listen on 127\.0\.0\.1:80 \(EACCES\)/);
  assert.match(describeStartupError(sysError('EADDRINUSE', { syscall: 'listen' }), config)!, /127\.0\.0\.1:80 is already in use/);
});

test('anything else is a bug: null, so the stack is printed', () => {
  assert.equal(describeStartupError(new TypeError('x is undefined'), config), null);
  assert.equal(describeStartupError(sysError('EIO', { syscall: 'read', path: '/srv/sluice/x' }), config), null);
  assert.equal(describeStartupError(sysError('ENOENT', { syscall: 'open' }), config), null, 'no path: not about the data dir');
  assert.equal(describeStartupError('a string', config), null);
});
