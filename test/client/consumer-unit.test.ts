/**
 * Consumer behaviour against a scripted in-process broker (no real broker needed): CRC check
 * of received batches, skipping records below the fetch offset, OFFSET_OUT_OF_RANGE policies,
 * seek discarding prefetched data, and the pipelined prefetch.
 * The fake (fake-broker.ts) speaks the real wire format and serves one partition per topic
 * from an in-memory list of batches.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { Off, baseOffsetAt } from '../../protocol/record-batch.ts';
import { Consumer } from '../../client/consumer.ts';
import { withFake } from './fake-broker.ts';

async function pollUntil(c: Consumer, n: number, timeoutMs = 5000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    if (Date.now() > deadline) throw new Error(`got ${out.length} of ${n} messages`);
    for (const m of await c.poll(200)) out.push(`${m.offset}:${m.value?.toString()}`);
  }
  return out;
}

test('consumer rejects a batch whose CRC does not match with CORRUPT_MESSAGE', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a', 'b', 'c']);
    broker.topics.get('t')!.batches[0]![Off.records + 5]! ^= 0xff; // flip a byte inside the records
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50 });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      await assert.rejects(c.poll(2000), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE && /CRC/.test(e.message));
      assert.equal(c.position('t', 0), 0, 'position does not move past a corrupt batch');
    } finally {
      await c.close();
    }
  });
});

test('checkCrcs false skips the CRC but still decodes', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['abc']);
    const b = broker.topics.get('t')!.batches[0]!;
    b[b.length - 2] = 'x'.charCodeAt(0); // last value byte ('c' -> 'x'); the header count byte follows
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, checkCrcs: false });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await pollUntil(c, 1), ['0:abx']);
    } finally {
      await c.close();
    }
  });
});

test('checkCrcs false: a batch whose records cannot be decoded fails the poll and the position stays before it', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a', 'b', 'c']);
    broker.append('t', ['d']);
    // A record count beyond the records present: the framing checks pass, decoding runs off the end.
    broker.topics.get('t')!.batches[0]!.writeInt32BE(100, Off.recordCount);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, checkCrcs: false });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      // The error surfaces on the poll that decodes the batch or the next one; nothing of or
      // after the batch is returned before it.
      const nextError = async (): Promise<unknown> => {
        for (let i = 0; i < 3; i++) {
          const r = await c.poll(2000).catch((e: unknown) => e);
          if (!Array.isArray(r)) return r;
          assert.deepEqual(r.map((m) => m.offset), [], 'no records returned');
        }
        return null;
      };
      for (let round = 1; round <= 2; round++) {
        const e = await nextError();
        assert.ok(e instanceof SluiceError && e.code === ErrorCode.CORRUPT_MESSAGE, `round ${round}: CORRUPT_MESSAGE, not ${String(e)}`);
        // Round 2: still stuck on the batch, not silently skipped after the first error.
        assert.equal(c.position('t', 0), 0, `round ${round}: the position does not move past records that were never returned`);
      }
    } finally {
      await c.close();
    }
  });
});

test('partitions added in one call are fetched only once every start offset is known (one leader slow to answer ListOffsets)', async () => {
  // Node 0 leads 'fast' and 'idle', node 1 leads 'slow' and answers ListOffsets after 1.5 s.
  await withFake(async (fast) => {
    await withFake(async (slow) => {
      slow.nodeId = 1;
      fast.peers = [slow];
      slow.peers = [fast];
      slow.listOffsetsDelayMs = 1500;
      fast.append('fast', ['f0', 'f1', 'f2']);
      slow.append('slow', ['s0']);
      fast.topics.set('idle', { batches: [], logStart: 0 });
      const c = new Consumer({ bootstrap: fast.bootstrap, maxWaitMs: 50, autoOffsetReset: 'earliest' });
      try {
        await c.assign([{ topic: 'idle', partition: 0, offset: 0 }]);
        let added = false;
        let fastPositionWhenAdded = -1;
        const adding = c.addPartitions([{ topic: 'fast', partition: 0 }, { topic: 'slow', partition: 0 }]).then(() => {
          added = true;
          fastPositionWhenAdded = c.position('fast', 0);
        });
        // Poll while the slow lookup is pending: nothing of 'fast' may be handed out yet (a
        // group member would drop it, not owning the partitions before the call resolves).
        const early: string[] = [];
        const got: string[] = [];
        while (!added) {
          for (const m of await c.poll(100)) {
            if (!added) early.push(`${m.topic}:${m.offset}`);
            got.push(`${m.offset}:${m.value?.toString()}`);
          }
        }
        await adding;
        assert.deepEqual(early, [], 'no records of partitions whose assignment call has not resolved');
        assert.equal(fastPositionWhenAdded, 0, 'fast starts at its earliest offset when the call resolves');
        if (got.length < 4) got.push(...(await pollUntil(c, 4 - got.length)));
        assert.deepEqual(got.sort(), ['0:f0', '0:s0', '1:f1', '2:f2']);
      } finally {
        await c.close();
      }
    });
  });
});

test('records below the requested offset are skipped', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['m0', 'm1', 'm2', 'm3', 'm4']);
    broker.append('t', ['m5', 'm6']);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50 });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 3 }]);
      assert.deepEqual(await pollUntil(c, 4), ['3:m3', '4:m4', '5:m5', '6:m6']);
      assert.equal(c.position('t', 0), 7);
    } finally {
      await c.close();
    }
  });
});

test('assign resolves earliest and latest; default autoOffsetReset is latest', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a', 'b']);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50 });
    try {
      await c.assign([{ topic: 't', partition: 0 }]);
      assert.equal(c.position('t', 0), 2);
      await c.assign([{ topic: 't', partition: 0, offset: 'earliest' }]);
      assert.equal(c.position('t', 0), 0);
      await assert.rejects(c.assign([{ topic: 'missing', partition: 0 }]), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    } finally {
      await c.close();
    }
  });
});

test('OFFSET_OUT_OF_RANGE: none throws until seek, earliest resets', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a', 'b']);
    const none = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, autoOffsetReset: 'none' });
    try {
      await none.assign([{ topic: 't', partition: 0, offset: 10 }]);
      await assert.rejects(pollUntil(none, 1), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.OFFSET_OUT_OF_RANGE);
      none.seek('t', 0, 1);
      assert.deepEqual(await pollUntil(none, 1), ['1:b']);
    } finally {
      await none.close();
    }
    const earliest = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, autoOffsetReset: 'earliest' });
    try {
      await earliest.assign([{ topic: 't', partition: 0, offset: 10 }]);
      assert.deepEqual(await pollUntil(earliest, 2), ['0:a', '1:b']);
    } finally {
      await earliest.close();
    }
  });
});

test('seek discards prefetched data and restarts at the new offset', async () => {
  await withFake(async (broker) => {
    for (let i = 0; i < 5; i++) broker.append('t', [`v${2 * i}`, `v${2 * i + 1}`]);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50, partitionMaxBytes: 1 });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      const first = await pollUntil(c, 1);
      assert.equal(first[0], '0:v0');
      c.seek('t', 0, 7);
      const next = await pollUntil(c, 3);
      assert.deepEqual(next, ['7:v7', '8:v8', '9:v9']);
      c.seek('t', 0, 'earliest');
      assert.deepEqual((await pollUntil(c, 1))[0], '0:v0');
    } finally {
      await c.close();
    }
  });
});

test('the next Fetch is in flight while the application holds the previous result', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a']);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 2000 });
    try {
      await c.assign([{ topic: 't', partition: 0, offset: 0 }]);
      assert.deepEqual(await pollUntil(c, 1), ['0:a']);
      // The prefetch from offset 1 was sent when the first response arrived, before poll returned.
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(broker.fetches.length >= 2, `fetches sent: ${broker.fetches.length}`);
      assert.equal(broker.fetches[1]!.topics[0]!.partitions[0]!.fetchOffset, 1);
      broker.append('t', ['b']);
      assert.deepEqual(await pollUntil(c, 1), ['1:b']);
      assert.equal(baseOffsetAt(broker.topics.get('t')!.batches[1]!, 0), 1);
    } finally {
      await c.close();
    }
  });
});

test('async iterator yields messages in order and ends on close', async () => {
  await withFake(async (broker) => {
    broker.append('t', ['a', 'b', 'c']);
    const c = new Consumer({ bootstrap: broker.bootstrap, maxWaitMs: 50 });
    await c.assign([{ topic: 't', partition: 0, offset: 'earliest' }]);
    const seen: string[] = [];
    for await (const m of c) {
      seen.push(m.value!.toString());
      if (seen.length === 3) await c.close();
    }
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });
});
