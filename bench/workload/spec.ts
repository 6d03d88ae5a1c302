/**
 * A workload file (YAML or JSON, bench/workloads/*.yaml): what `sluice bench workload` runs, in
 * the shape of the OpenMessaging Benchmark's workload files (same field names where OMB has
 * them), plus a few fields of our own (replicationFactor, idleConnections, process counts).
 *
 * Invariants: parseWorkload returns a Workload whose every field is present and in range, or
 * throws a WorkloadError naming the file, the field and what was expected. Unknown fields are
 * errors (a typo must not silently fall back to a default).
 */
import { parseDocument } from 'yaml';

export const KEY_DISTRIBUTORS = ['NO_KEY', 'KEY_ROUND_ROBIN', 'RANDOM_NANO'] as const;
export type KeyDistributor = (typeof KEY_DISTRIBUTORS)[number];

export interface Workload {
  name: string;
  topics: number;
  partitionsPerTopic: number;
  /** Value size in bytes; at least SEND_TIME_BYTES (the send time rides in the value). */
  messageSize: number;
  producersPerTopic: number;
  /** Consumers in each subscription of each topic; they split the topic's partitions. */
  consumerPerSubscription: number;
  /** Independent readers of each topic (OMB's subscriptions); each receives every message. */
  subscriptionsPerTopic: number;
  /** Subscriptions as Sluice consumer groups (partitions assigned by the broker) instead of a static split. */
  consumerGroups: boolean;
  /** Messages per second over all producers; 0 = as fast as they can. */
  producerRate: number;
  keyDistributor: KeyDistributor;
  warmupSeconds: number;
  testDurationSeconds: number;
  /** -1 = the broker's default. */
  replicationFactor: number;
  acks: 'all' | 1 | 0;
  /** Connections opened and held idle for the run, in a process of their own. */
  idleConnections: number;
  /** How many processes carry the producers / the consumers (clients are spread over them). 0 = one per client. */
  producerProcesses: number;
  consumerProcesses: number;
  /** Topic configs for the created topics (Sluice: e.g. min.insync.replicas; peers ignore them). */
  topicConfigs: Record<string, string | number>;
  /** Free text kept in the result: how to run it (e.g. the cluster it needs). */
  notes: string;
}

export class WorkloadError extends Error {
  override name = 'WorkloadError';
}

/** Limits: a file beyond them is a mistake, not a workload this machine can run. */
const WORKLOAD_FILE_BYTES_MAX = 1024 * 1024;
const TOPICS_MAX = 10_000;
const PARTITIONS_PER_TOPIC_MAX = 100_000;
const MESSAGE_SIZE_BYTES_MAX = 16 * 1024 * 1024;
const CLIENTS_PER_TOPIC_MAX = 1000;
const PROCESSES_MAX = 256;
const SECONDS_MAX = 86_400;
const IDLE_CONNECTIONS_MAX = 100_000;
const PRODUCER_RATE_MAX = 100_000_000;
/** The first 8 bytes of each value carry its send time (payload.ts). */
export const MESSAGE_SIZE_BYTES_MIN = 8;
/** YAML aliases expanded at most (a billion-laughs file is refused, not expanded). */
const YAML_ALIASES_MAX = 100;

type FieldSpec = { kind: 'int'; min: number; max: number; default?: number } | { kind: 'string'; default?: string } | { kind: 'bool'; default: boolean } | { kind: 'map'; default: Record<string, never> } | { kind: 'enum'; values: readonly (string | number)[]; default: string | number };

const FIELDS: Record<keyof Workload, FieldSpec> = {
  name: { kind: 'string' },
  topics: { kind: 'int', min: 1, max: TOPICS_MAX, default: 1 },
  partitionsPerTopic: { kind: 'int', min: 1, max: PARTITIONS_PER_TOPIC_MAX },
  messageSize: { kind: 'int', min: MESSAGE_SIZE_BYTES_MIN, max: MESSAGE_SIZE_BYTES_MAX },
  producersPerTopic: { kind: 'int', min: 1, max: CLIENTS_PER_TOPIC_MAX, default: 1 },
  consumerPerSubscription: { kind: 'int', min: 0, max: CLIENTS_PER_TOPIC_MAX, default: 1 },
  subscriptionsPerTopic: { kind: 'int', min: 0, max: CLIENTS_PER_TOPIC_MAX, default: 1 },
  consumerGroups: { kind: 'bool', default: false },
  producerRate: { kind: 'int', min: 0, max: PRODUCER_RATE_MAX },
  keyDistributor: { kind: 'enum', values: KEY_DISTRIBUTORS, default: 'NO_KEY' },
  warmupSeconds: { kind: 'int', min: 0, max: SECONDS_MAX, default: 0 },
  testDurationSeconds: { kind: 'int', min: 1, max: SECONDS_MAX },
  replicationFactor: { kind: 'int', min: -1, max: 16, default: -1 },
  acks: { kind: 'enum', values: ['all', 1, 0], default: 'all' },
  idleConnections: { kind: 'int', min: 0, max: IDLE_CONNECTIONS_MAX, default: 0 },
  producerProcesses: { kind: 'int', min: 0, max: PROCESSES_MAX, default: 0 },
  consumerProcesses: { kind: 'int', min: 0, max: PROCESSES_MAX, default: 0 },
  topicConfigs: { kind: 'map', default: {} },
  notes: { kind: 'string', default: '' },
};
const TOPIC_CONFIGS_MAX = 100;

/** OMB spellings accepted for our fields. */
const ALIASES: Record<string, keyof Workload> = { consumersPerTopic: 'consumerPerSubscription', testDurationMinutes: 'testDurationSeconds', warmupDurationMinutes: 'warmupSeconds' };
const MINUTES_FIELDS = new Set(['testDurationMinutes', 'warmupDurationMinutes']);

/** Parses the text of a workload file; `source` names it in errors. YAML is a superset of JSON, so one parser reads both. */
export function parseWorkload(text: string, source: string): Workload {
  if (text.length > WORKLOAD_FILE_BYTES_MAX) throw new WorkloadError(`${source}: the file is larger than ${WORKLOAD_FILE_BYTES_MAX} bytes`);
  let doc: unknown;
  try {
    // Warnings (unknown tags, directives) are not errors here; the field checks below judge the values.
    const parsed = parseDocument(text, { logLevel: 'silent' });
    if (parsed.errors.length > 0) throw parsed.errors[0];
    doc = parsed.toJS({ maxAliasCount: YAML_ALIASES_MAX });
  } catch (e) {
    throw new WorkloadError(`${source}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new WorkloadError(`${source}: expected a mapping of workload fields (name, partitionsPerTopic, messageSize, ...), got ${describe(doc)}`);
  const raw = doc as Record<string, unknown>;
  const out: Partial<Record<keyof Workload, unknown>> = {};
  for (const [k0, v0] of Object.entries(raw)) {
    const key = (ALIASES[k0] ?? k0) as keyof Workload;
    if (!Object.hasOwn(FIELDS, key)) throw new WorkloadError(`${source}: unknown field "${k0}" (known: ${Object.keys(FIELDS).join(', ')})`);
    if (Object.hasOwn(out, key)) throw new WorkloadError(`${source}: field "${key}" given twice (as "${k0}" and another spelling)`);
    let v = v0;
    if (MINUTES_FIELDS.has(k0)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new WorkloadError(`${source}: field "${k0}" must be a number of minutes, got ${describe(v)}`);
      v = Math.round(v * 60);
    }
    out[key] = checkField(source, key, FIELDS[key], v);
  }
  for (const [key, spec] of Object.entries(FIELDS) as Array<[keyof Workload, FieldSpec]>) {
    if (Object.hasOwn(out, key)) continue;
    if (spec.default === undefined) throw new WorkloadError(`${source}: missing required field "${key}"`);
    out[key] = spec.default;
  }
  const w = out as Workload;
  if (w.subscriptionsPerTopic > 0 && w.consumerPerSubscription === 0) throw new WorkloadError(`${source}: subscriptionsPerTopic is ${w.subscriptionsPerTopic} but consumerPerSubscription is 0`);
  if (w.consumerGroups && w.subscriptionsPerTopic === 0) throw new WorkloadError(`${source}: consumerGroups needs subscriptionsPerTopic >= 1`);
  return w;
}

function checkField(source: string, key: string, spec: FieldSpec, v: unknown): unknown {
  const where = `${source}: field "${key}"`;
  switch (spec.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new WorkloadError(`${where} must be an integer, got ${describe(v)}`);
      if (v < spec.min || v > spec.max) throw new WorkloadError(`${where} must be between ${spec.min} and ${spec.max}, got ${v}`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new WorkloadError(`${where} must be a string, got ${describe(v)}`);
      if (key === 'name' && !/^[A-Za-z0-9._-]{1,100}$/.test(v)) throw new WorkloadError(`${where} must be 1-100 characters of letters, digits, '.', '_' or '-', got ${JSON.stringify(v).slice(0, 120)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new WorkloadError(`${where} must be true or false, got ${describe(v)}`);
      return v;
    case 'map': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WorkloadError(`${where} must be a mapping of config name to value, got ${describe(v)}`);
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length > TOPIC_CONFIGS_MAX) throw new WorkloadError(`${where} has more than ${TOPIC_CONFIGS_MAX} entries`);
      for (const [k, x] of entries) {
        if (typeof x !== 'string' && !(typeof x === 'number' && Number.isFinite(x))) throw new WorkloadError(`${where}: "${k}" must be a string or a number, got ${describe(x)}`);
      }
      return { ...(v as Record<string, string | number>) };
    }
    case 'enum':
      if (!spec.values.includes(v as string | number)) throw new WorkloadError(`${where} must be one of ${spec.values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`);
      return v;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v).slice(0, 80)}`;
  return `${typeof v} ${String(v).slice(0, 80)}`;
}
