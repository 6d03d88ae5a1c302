/** Sets of (topic, partition) as string keys, and their wire form ([{topic, partitions}]). */
import type { TopicPartitions } from '../../protocol/apis/consumer-group-heartbeat.ts';
import type { Assignment } from './assignors.ts';

export type TpSet = Set<string>;

export function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export function tpSplit(key: string): [string, number] {
  const i = key.lastIndexOf('\u0000');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

export function fromWire(list: readonly TopicPartitions[]): TpSet {
  const out: TpSet = new Set();
  for (const t of list) for (const p of t.partitions) out.add(tpKey(t.topic, p));
  return out;
}

export function toWire(set: Iterable<string>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const k of set) {
    const [t, p] = tpSplit(k);
    const list = byTopic.get(t);
    if (list) list.push(p);
    else byTopic.set(t, [p]);
  }
  return [...byTopic.keys()].sort().map((topic) => ({ topic, partitions: byTopic.get(topic)!.sort((a, b) => a - b) }));
}

export function fromAssignment(topics: Map<string, number[]> | undefined): TpSet {
  const out: TpSet = new Set();
  if (topics) for (const [t, parts] of topics) for (const p of parts) out.add(tpKey(t, p));
  return out;
}

export function toAssignmentTopics(set: TpSet): Map<string, number[]> {
  return new Map(toWire(set).map((t) => [t.topic, t.partitions]));
}

export function difference(a: TpSet, b: TpSet): TpSet {
  const out: TpSet = new Set();
  for (const k of a) if (!b.has(k)) out.add(k);
  return out;
}

export function intersection(a: TpSet, b: TpSet): TpSet {
  const out: TpSet = new Set();
  for (const k of a) if (b.has(k)) out.add(k);
  return out;
}

export function sameSet(a: TpSet, b: TpSet): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

export type { Assignment };
