/**
 * Server-side partition assignors. Each takes the members with their subscribed topics, the
 * partition count of every subscribed topic, and the previous target assignment, and returns
 * the new target: every subscribed partition goes to exactly one member subscribed to its
 * topic. Deterministic for the same input (members and topics are sorted first).
 *
 * - uniform (default): sticky and balanced. A member keeps what it had, up to its fair
 *   share; only the excess and unowned partitions move, each to the least-loaded eligible
 *   member. With identical subscriptions member loads differ by at most one.
 * - range: per topic, contiguous ranges of partitions to members in id order (Kafka's
 *   RangeAssignor), so co-partitioned topics land together.
 * - round-robin: all partitions, sorted by topic then partition, dealt to members in turn.
 */
export type Assignment = Map<string, Map<string, number[]>>; // memberId -> topic -> partitions

export interface AssignorInput {
  /** memberId -> subscribed topic names (already resolved from regexes, existing topics only). */
  members: Map<string, readonly string[]>;
  /** topic -> partition count. */
  partitionCounts: Map<string, number>;
  previous: Assignment;
}

export type Assignor = (input: AssignorInput) => Assignment;

export const ASSIGNOR_NAMES = ['uniform', 'range', 'round-robin'] as const;
export type AssignorName = (typeof ASSIGNOR_NAMES)[number];

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

function emptyAssignment(memberIds: readonly string[]): Assignment {
  return new Map(memberIds.map((m) => [m, new Map<string, number[]>()]));
}

function add(a: Assignment, member: string, topic: string, partition: number): void {
  const topics = a.get(member)!;
  const list = topics.get(topic);
  if (list) list.push(partition);
  else topics.set(topic, [partition]);
}

function sortLists(a: Assignment): Assignment {
  for (const topics of a.values()) for (const list of topics.values()) list.sort((x, y) => x - y);
  return a;
}

export const uniformAssignor: Assignor = ({ members, partitionCounts, previous }) => {
  const ids = [...members.keys()].sort();
  const out = emptyAssignment(ids);
  const load = new Map(ids.map((m) => [m, 0]));
  const eligible = new Map<string, string[]>(); // topic -> members subscribed
  for (const m of ids) for (const t of members.get(m)!) if (partitionCounts.has(t)) {
    const list = eligible.get(t);
    if (list) list.push(m);
    else eligible.set(t, [m]);
  }
  const all: Array<[string, number]> = [];
  for (const t of [...eligible.keys()].sort()) for (let p = 0; p < partitionCounts.get(t)!; p++) all.push([t, p]);
  // Fair share as if subscriptions were identical; exact for that case, a sane cap otherwise.
  const quotaMin = ids.length === 0 ? 0 : Math.floor(all.length / ids.length);
  let extraSlots = ids.length === 0 ? 0 : all.length - quotaMin * ids.length;
  const taken = new Set<string>();
  // Keep previous partitions, members with the most to keep first so they get the extra slots.
  const keeps = ids.map((m) => {
    const kept: Array<[string, number]> = [];
    for (const [t, parts] of previous.get(m) ?? []) {
      if (!members.get(m)!.includes(t) || !partitionCounts.has(t)) continue;
      for (const p of parts) if (p < partitionCounts.get(t)!) kept.push([t, p]);
    }
    return { m, kept };
  });
  keeps.sort((a, b) => b.kept.length - a.kept.length || (a.m < b.m ? -1 : 1));
  for (const { m, kept } of keeps) {
    let cap = quotaMin;
    if (kept.length > quotaMin && extraSlots > 0) {
      cap = quotaMin + 1;
      extraSlots--;
    }
    for (const [t, p] of kept) {
      if (load.get(m)! >= cap) break;
      const k = key(t, p);
      if (taken.has(k)) continue;
      taken.add(k);
      add(out, m, t, p);
      load.set(m, load.get(m)! + 1);
    }
  }
  for (const [t, p] of all) {
    if (taken.has(key(t, p))) continue;
    let best: string | null = null;
    for (const m of eligible.get(t)!) if (best === null || load.get(m)! < load.get(best)!) best = m;
    add(out, best!, t, p);
    load.set(best!, load.get(best!)! + 1);
  }
  return sortLists(out);
};

export const rangeAssignor: Assignor = ({ members, partitionCounts }) => {
  const ids = [...members.keys()].sort();
  const out = emptyAssignment(ids);
  for (const t of [...partitionCounts.keys()].sort()) {
    const subs = ids.filter((m) => members.get(m)!.includes(t));
    if (subs.length === 0) continue;
    const n = partitionCounts.get(t)!;
    const per = Math.floor(n / subs.length);
    const extra = n % subs.length;
    let p = 0;
    subs.forEach((m, i) => {
      const count = per + (i < extra ? 1 : 0);
      for (let j = 0; j < count; j++) add(out, m, t, p++);
    });
  }
  return out;
};

export const roundRobinAssignor: Assignor = ({ members, partitionCounts }) => {
  const ids = [...members.keys()].sort();
  const out = emptyAssignment(ids);
  let turn = 0;
  for (const t of [...partitionCounts.keys()].sort()) {
    for (let p = 0; p < partitionCounts.get(t)!; p++) {
      for (let tries = 0; tries < ids.length; tries++) {
        const m = ids[(turn + tries) % ids.length]!;
        if (members.get(m)!.includes(t)) {
          add(out, m, t, p);
          turn = (turn + tries + 1) % ids.length;
          break;
        }
      }
    }
  }
  return out;
};

export const assignors: Record<AssignorName, Assignor> = {
  uniform: uniformAssignor,
  range: rangeAssignor,
  'round-robin': roundRobinAssignor,
};
