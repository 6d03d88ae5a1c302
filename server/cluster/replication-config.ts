/**
 * Topic configs that belong to replication rather than to the log: parsed here, so the log
 * config (log-config.ts) stays about files. TopicManager splits a topic's config map into the
 * two and merges them back for DescribeTopics.
 *
 * - min.insync.replicas (default 1): acks=all is refused with NOT_ENOUGH_REPLICAS while
 *   fewer replicas are in sync.
 * - unclean.leader.election.enable (default false): when every in-sync replica is gone,
 *   `true` lets an out-of-sync replica lead, LOSING the acknowledged writes it lacks; `false`
 *   keeps the partition offline until an in-sync replica returns.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

export interface ReplicationConfig {
  readonly minInsyncReplicas: number;
  readonly uncleanLeaderElection: boolean;
}

export const DEFAULT_REPLICATION_CONFIG: ReplicationConfig = Object.freeze({ minInsyncReplicas: 1, uncleanLeaderElection: false });

const KEYS = ['min.insync.replicas', 'unclean.leader.election.enable'] as const;

/** Splits a topic config map into replication settings and the rest (for the log). */
export function splitReplicationConfig(configs: Record<string, string>): { replication: ReplicationConfig; log: Record<string, string> } {
  const log: Record<string, string> = {};
  let minInsyncReplicas = DEFAULT_REPLICATION_CONFIG.minInsyncReplicas;
  let uncleanLeaderElection = DEFAULT_REPLICATION_CONFIG.uncleanLeaderElection;
  for (const [k, v] of Object.entries(configs)) {
    if (k === 'min.insync.replicas') {
      if (!/^\d{1,3}$/.test(v) || Number(v) < 1) throw new SluiceError(ErrorCode.INVALID_CONFIG, `min.insync.replicas must be an integer >= 1, got ${JSON.stringify(v)}`);
      minInsyncReplicas = Number(v);
    } else if (k === 'unclean.leader.election.enable') {
      if (v !== 'true' && v !== 'false') throw new SluiceError(ErrorCode.INVALID_CONFIG, `unclean.leader.election.enable must be true or false, got ${JSON.stringify(v)}`);
      uncleanLeaderElection = v === 'true';
    } else {
      log[k] = v;
    }
  }
  return { replication: { minInsyncReplicas, uncleanLeaderElection }, log };
}

export function replicationConfigToStrings(c: ReplicationConfig): Record<string, string> {
  return { [KEYS[0]]: String(c.minInsyncReplicas), [KEYS[1]]: String(c.uncleanLeaderElection) };
}
