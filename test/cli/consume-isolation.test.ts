/**
 * `sluice consume --isolation / --delivery` as a user runs it: a child process against the
 * scripted broker (test/client/fake-broker.ts) serving a partition with an aborted and a
 * committed transaction; usage errors for inconsistent flags.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { BatchBuilder, buildControlBatch } from '../../protocol/record-batch.ts';
import { withFake, type FakeBroker } from '../client/fake-broker.ts';
import { sluice } from '../helpers/cli.ts';

function txn(pid: number, values: string[]): Uint8Array {
  const b = new BatchBuilder();
  for (const v of values) b.append(null, Buffer.from(v), Date.now());
  return b.finish({ producerId: pid, producerEpoch: 0, baseSequence: 0, transactional: true }).slice();
}

function transactions(broker: FakeBroker): void {
  broker.appendBatch('t', txn(1, ['aborted-1', 'aborted-2'])); // 0-1
  broker.appendBatch('t', txn(2, ['committed'])); // 2
  broker.appendBatch('t', buildControlBatch({ producerId: 1, producerEpoch: 0, committed: false, coordinatorEpoch: 0 }, Date.now())); // 3
  broker.appendBatch('t', buildControlBatch({ producerId: 2, producerEpoch: 0, committed: true, coordinatorEpoch: 0 }, Date.now())); // 4
  broker.append('t', ['plain']); // 5
}

test('consume --isolation read_committed prints only committed records; the default prints aborted ones too; markers never', async () => {
  await withFake(async (broker) => {
    transactions(broker);
    const bs = ['--bootstrap', broker.bootstrap, '--from-beginning', '--idle-timeout-ms', '1500', '--print-offset'];
    let r = await sluice(['consume', 't', '--isolation', 'read_committed', ...bs]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0:2\tcommitted\n0:5\tplain\n');
    r = await sluice(['consume', 't', ...bs]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0:0\taborted-1\n0:1\taborted-2\n0:2\tcommitted\n0:5\tplain\n');
  });
});

test('consume --delivery / --isolation: usage errors', async () => {
  let r = await sluice(['consume', 't', '--delivery', 'exactly-once']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--delivery needs --group/);
  r = await sluice(['consume', 't', '--group', 'g', '--delivery', 'twice']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--delivery must be at-least-once, at-most-once or exactly-once/);
  r = await sluice(['consume', 't', '--isolation', 'dirty']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--isolation must be read_committed or read_uncommitted/);
  r = await sluice(['consume', 't', '--group', 'g', '--delivery', 'exactly-once', '--isolation', 'read_uncommitted']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /exactly-once reads read_committed/);
  r = await sluice(['consume', '--help']);
  assert.match(r.stdout, /--delivery D/);
});
