/**
 * Plans replica moves for `sluice cluster rebalance` and `cluster drain`: spread replicas
 * evenly over the brokers that should hold them, moving as few as possible. Each step moves
 * one replica from the most loaded broker (a draining broker counts as overloaded while it
 * holds any) to the least loaded eligible broker not already holding that partition; it stops
 * when no draining broker holds a replica and loads differ by at most one. A replica keeps its
 * position in the list, so a partition's preferred leader changes only when it moves.
 */
export interface PartitionReplicas {
  topic: string;
  partition: number;
  replicas: number[];
}

export function planReassignment(partitions: readonly PartitionReplicas[], brokers: readonly number[], draining: ReadonlySet<number> = new Set()): PartitionReplicas[] {
  const eligible = brokers.filter((b) => !draining.has(b));
  if (eligible.length === 0) throw new Error('no broker is left to hold the replicas');
  const plan = partitions.map((p) => ({ ...p, replicas: [...p.replicas] }));
  const load = new Map<number, number>(brokers.map((b) => [b, 0]));
  for (const p of plan) for (const b of p.replicas) load.set(b, (load.get(b) ?? 0) + 1);
  const changed = new Set<number>();
  const stepsMax = plan.reduce((n, p) => n + p.replicas.length, 0) * 2;
  for (let step = 0; step < stepsMax; step++) {
    const holders = [...load.entries()].filter(([, n]) => n > 0).map(([b]) => b);
    const drainingHolder = holders.find((b) => draining.has(b) || !brokers.includes(b));
    const from = drainingHolder ?? maxBy(eligible, (b) => load.get(b)!);
    let moved = false;
    // Least loaded first; skip a destination that already holds every partition of `from`.
    for (const to of [...eligible].sort((a, b) => load.get(a)! - load.get(b)! || a - b)) {
      if (to === from) continue;
      if (drainingHolder === undefined && load.get(from)! - load.get(to)! <= 1) break;
      const i = plan.findIndex((p) => p.replicas.includes(from) && !p.replicas.includes(to));
      if (i < 0) continue;
      const p = plan[i]!;
      p.replicas[p.replicas.indexOf(from)] = to;
      load.set(from, load.get(from)! - 1);
      load.set(to, load.get(to)! + 1);
      changed.add(i);
      moved = true;
      break;
    }
    if (!moved) break;
  }
  return [...changed].sort((a, b) => a - b).map((i) => plan[i]!);
}

function maxBy(xs: readonly number[], f: (x: number) => number): number {
  let best = xs[0]!;
  for (const x of xs) if (f(x) > f(best)) best = x;
  return best;
}
