// Delayed delivery across kill -9 of a real single broker (SPEC §8.8, §7.9): messages
// scheduled over a few seconds, the broker SIGKILLed before they fall due, twice while they
// fall due, and right after a cancel; after the last restart every message that was not
// cancelled is in the log exactly once as a released batch, after a RELEASED marker stamped
// no earlier than its delivery time, and no cancelled one is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { CancelDelayedResponse, FetchResponse, ListDelayedResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { CONTROL_TYPE_RELEASED, CONTROL_TYPE_SCHEDULED, controlTypeAt, formatDeliverAtMs, readDelayMarker } from '../../protocol/delayed-batch.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { batchSizeAt, buildBatch, decodeRecords, HEADER_DELIVER_AT_MS, isControlAt, lastOffsetAt, maxTimestampAt, newBatchInfo, readInt64, validateBatch } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker, tempDir, type BrokerProcess } from '../helpers/broker-process.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const TOPIC = 'later';
const COUNT = 60;

async function produceDelayed(c: Connection, i: number, deliverAtMs: number): Promise<number> {
  const batch = buildBatch([{ key: enc.encode(`k${i}`), value: enc.encode(`m${i}`), headers: [{ key: HEADER_DELIVER_AT_MS, value: formatDeliverAtMs(deliverAtMs) }] }]);
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
  const p = r.control.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  return p.baseOffset;
}

interface LogView {
  /** value -> how many released data batches carry it, and the RELEASED marker timestamp before each. */
  released: Map<string, number[]>;
  scheduled: number;
  end: number;
}

/** Reads the whole partition as a consumer (up to the high watermark), checking every batch. */
async function readAll(c: Connection): Promise<LogView> {
  const view: LogView = { released: new Map(), scheduled: 0, end: 0 };
  const info = newBatchInfo();
  let offset = 0;
  let lastMarker: { at: number; ts: number } | null = null;
  for (let guard = 0; guard < 10_000; guard++) {
    const r = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }] });
    const p = r.control.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0);
    const data = r.data;
    if (data.length === 0) break;
    for (let pos = 0; pos < data.length; pos += batchSizeAt(data, pos)) {
      assert.equal(validateBatch(data, pos, data.length, info, true), ErrorCode.NONE, info.problem);
      if (isControlAt(data, pos)) {
        const type = controlTypeAt(data, pos);
        if (type === CONTROL_TYPE_SCHEDULED) view.scheduled++;
        if (type === CONTROL_TYPE_RELEASED) {
          const m = readDelayMarker(data, pos)!;
          lastMarker = { at: m.deliverAtMs, ts: maxTimestampAt(data, pos) };
          assert.ok(lastMarker.ts >= m.deliverAtMs, `released at ${lastMarker.ts}, before its time ${m.deliverAtMs}`);
        } else {
          lastMarker = null;
        }
      } else {
        assert.ok(lastMarker !== null, `data batch at ${readInt64(data, pos)} does not follow a RELEASED marker`);
        for (const rec of decodeRecords(data, pos)) {
          const v = dec.decode(rec.value!);
          const list = view.released.get(v) ?? [];
          list.push(lastMarker.ts);
          view.released.set(v, list);
        }
        lastMarker = null;
      }
      offset = lastOffsetAt(data, pos) + 1;
    }
  }
  view.end = offset;
  return view;
}

async function pending(c: Connection): Promise<ListDelayedResponse> {
  return (await c.send<ListDelayedResponse>(ApiKey.LIST_DELAYED, { topic: TOPIC, partition: 0, limit: 1000 })).control;
}

test('kill -9 before and while delayed messages fall due, and right after a cancel: each released exactly once, never early, cancelled ones never', async () => {
  const dataDir = tempDir();
  let b: BrokerProcess = await startBroker({ dataDir });
  let c: Connection | null = null;
  const restart = async (): Promise<Connection> => {
    c?.close();
    await b.kill();
    b = await startBroker({ dataDir });
    return Connection.connect(b.host, b.port);
  };
  try {
    c = await Connection.connect(b.host, b.port);
    const created = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: TOPIC, partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '4096' } }], validateOnly: false });
    assert.equal(created.control.topics[0].errorCode, 0);
    const t0 = Date.now();
    // Due from t0 + 3 s to t0 + 9 s, produced in a shuffled order.
    const due = new Map<string, number>();
    const ids = new Map<string, number>();
    const order = Array.from({ length: COUNT }, (_, i) => (i * 37) % COUNT);
    for (const i of order) {
      const at = t0 + 3000 + Math.floor((i * 6000) / COUNT);
      due.set(`m${i}`, at);
      ids.set(`m${i}`, await produceDelayed(c, i, at));
    }
    assert.equal((await pending(c)).pendingCount, COUNT);

    // 1. Before anything is due.
    c = await restart();
    let l = await pending(c);
    assert.equal(l.pendingCount, COUNT, 'every scheduled message survived kill -9');
    assert.equal(l.frontierOffset, -1);

    // Cancel three not yet due (the last ones), then kill at once.
    const cancelled = [`m${COUNT - 1}`, `m${COUNT - 2}`, `m${COUNT - 5}`];
    const cr = (await c.send<CancelDelayedResponse>(ApiKey.CANCEL_DELAYED, { topic: TOPIC, partitions: [{ partition: 0, offsets: cancelled.map((v) => ids.get(v)!) }] })).control;
    assert.deepEqual(cr.topics[0]!.partitions[0]!.results.map((r) => r.errorCode), [0, 0, 0]);
    c = await restart();
    l = await pending(c);
    assert.equal(l.pendingCount, COUNT - cancelled.length, 'cancels survived kill -9');
    const again = (await c.send<CancelDelayedResponse>(ApiKey.CANCEL_DELAYED, { topic: TOPIC, partitions: [{ partition: 0, offsets: [ids.get(cancelled[0]!)!] }] })).control;
    assert.equal(again.topics[0]!.partitions[0]!.results[0]!.errorCode, ErrorCode.DELAYED_MESSAGE_NOT_FOUND);

    // 2. Twice while they fall due.
    for (const atMs of [t0 + 4500, t0 + 6500]) {
      await new Promise((r) => setTimeout(r, Math.max(0, atMs - Date.now())));
      c = await restart();
    }
    const released = await readAll(c);
    assert.ok(released.released.size > 0 && released.released.size < COUNT - cancelled.length, `some released before the last kill (${released.released.size})`);

    // 3. After the last one is due (+ margin), everything is out exactly once.
    const lastDue = Math.max(...due.values());
    const deadline = lastDue + 15_000;
    let view: LogView;
    for (;;) {
      view = await readAll(c);
      if (view.released.size >= COUNT - cancelled.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const [v, at] of due) {
      const got = view.released.get(v);
      if (cancelled.includes(v)) {
        assert.equal(got, undefined, `${v} was cancelled but released`);
      } else {
        assert.equal(got?.length, 1, `${v} released ${got?.length ?? 0} times`);
        assert.ok(got![0]! >= at, `${v} released at ${got![0]}, due ${at}`);
      }
    }
    assert.equal(view.scheduled, COUNT);
    l = await pending(c);
    assert.equal(l.pendingCount, 0);
    // A restart after everything is released releases nothing again.
    c = await restart();
    await new Promise((r) => setTimeout(r, 500));
    const after = await readAll(c);
    assert.equal(after.end, view.end, 'nothing appended after a restart with nothing pending');
  } finally {
    c?.close();
    await b.stop();
    b.cleanup();
  }
});

test('bad delivery times from a client get INVALID_DELIVERY_TIME; the broker keeps serving', async () => {
  const b = await startBroker({ args: ['--delayed-delivery-ms-max', '60000'] });
  try {
    const c = await Connection.connect(b.host, b.port);
    await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: TOPIC, partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
    for (const [value, re] of [['-100', /decimal digits/], ['soon', /decimal digits/], [String(Date.now() + 120_000), /delayedDeliveryMsMax/]] as const) {
      const batch = buildBatch([{ value: enc.encode('x'), headers: [{ key: HEADER_DELIVER_AT_MS, value: enc.encode(value) }] }]);
      const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
      const p = r.control.topics[0]!.partitions[0]!;
      assert.equal(p.errorCode, ErrorCode.INVALID_DELIVERY_TIME, value);
      assert.match(p.errorMessage ?? '', re);
    }
    const limit = await c.send<any>(ApiKey.LIST_DELAYED, { topic: TOPIC, partition: 0, limit: 5000 }).then(() => null, (e: unknown) => e);
    assert.equal((limit as { code?: number } | null)?.code, ErrorCode.MALFORMED_REQUEST);
    const ok = await produceDelayed(c, 1, Date.now() + 30_000);
    assert.equal(ok, 0);
    c.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
