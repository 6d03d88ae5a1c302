/**
 * Access control entries (SPEC §2.7): principal × resource (topic, group or the cluster; a
 * literal name, `*` for all, or a prefix) × operation × allow/deny, and the matching rules.
 *
 * Rules (Kafka's): a request is allowed when some entry allows it and none denies it (deny
 * wins); no entry means deny. `read`, `write`, `delete` and `alter` each imply `describe`;
 * `all` stands for every operation. Principals are `User:<name>` or `User:*`.
 *
 * Invariants: every entry passes checkAclEntry before it is stored or used (stores skip and
 * count entries that do not); an entry's id is the SHA-256 of its canonical form, so adding
 * the same entry twice stores it once and removing needs only the entry.
 */
import { createHash } from 'node:crypto';

export const RESOURCE_TYPES = ['topic', 'group', 'cluster'] as const;
export const PATTERN_TYPES = ['literal', 'prefixed'] as const;
export const OPERATIONS = ['read', 'write', 'create', 'delete', 'alter', 'describe', 'all'] as const;
export const PERMISSIONS = ['allow', 'deny'] as const;
export const ACLS_MAX = 100_000;
/** The cluster resource's one name. */
export const CLUSTER_NAME = 'cluster';

export type ResourceType = (typeof RESOURCE_TYPES)[number];
export type PatternType = (typeof PATTERN_TYPES)[number];
export type Operation = (typeof OPERATIONS)[number];

export interface AclEntry {
  principal: string;
  resourceType: ResourceType;
  patternType: PatternType;
  name: string;
  operation: Operation;
  permission: 'allow' | 'deny';
}

export class AclFormatError extends Error {}

export function checkAclEntry(v: unknown): AclEntry {
  const e = v as AclEntry;
  if (typeof e !== 'object' || e === null) throw new AclFormatError('an ACL entry is an object');
  if (typeof e.principal !== 'string' || !/^User:.{1,255}$/su.test(e.principal)) throw new AclFormatError(`principal must be User:<name> or User:*, got ${JSON.stringify(e.principal)}`);
  if (!(RESOURCE_TYPES as readonly string[]).includes(e.resourceType)) throw new AclFormatError(`resource type must be one of ${RESOURCE_TYPES.join(', ')}`);
  if (!(PATTERN_TYPES as readonly string[]).includes(e.patternType)) throw new AclFormatError(`pattern type must be literal or prefixed`);
  if (typeof e.name !== 'string' || e.name.length === 0 || e.name.length > 255) throw new AclFormatError('resource name must be 1..255 characters');
  if (e.resourceType === 'cluster' && (e.name !== CLUSTER_NAME || e.patternType !== 'literal')) throw new AclFormatError(`the cluster resource is literal "${CLUSTER_NAME}"`);
  if (!(OPERATIONS as readonly string[]).includes(e.operation)) throw new AclFormatError(`operation must be one of ${OPERATIONS.join(', ')}`);
  if (!(PERMISSIONS as readonly string[]).includes(e.permission)) throw new AclFormatError('permission must be allow or deny');
  return { principal: e.principal, resourceType: e.resourceType, patternType: e.patternType, name: e.name, operation: e.operation, permission: e.permission };
}

export function aclId(e: AclEntry): string {
  const canonical = JSON.stringify([e.principal, e.resourceType, e.patternType, e.name, e.operation, e.permission]);
  return createHash('sha256').update(canonical).digest('hex');
}

export function formatAcl(e: AclEntry): string {
  const resource = e.resourceType === 'cluster' ? 'cluster' : `${e.resourceType}:${e.patternType === 'prefixed' ? `${e.name}*` : e.name}`;
  return `${e.permission.padEnd(5)} ${e.principal} ${e.operation} ${resource}`;
}

function operationCovers(entryOp: Operation, op: Operation): boolean {
  if (entryOp === 'all' || entryOp === op) return true;
  return op === 'describe' && (entryOp === 'read' || entryOp === 'write' || entryOp === 'delete' || entryOp === 'alter');
}

function resourceCovers(e: AclEntry, type: ResourceType, name: string): boolean {
  if (e.resourceType !== type) return false;
  if (e.patternType === 'prefixed') return name.startsWith(e.name);
  return e.name === name || e.name === '*';
}

/** The entries in force, indexed by principal; `allowed` is the decision for one resource. */
export class AclSet {
  private readonly byPrincipal = new Map<string, AclEntry[]>();

  constructor(entries: readonly AclEntry[]) {
    for (const e of entries) {
      let list = this.byPrincipal.get(e.principal);
      if (!list) this.byPrincipal.set(e.principal, (list = []));
      list.push(e);
    }
  }

  private entriesFor(user: string): AclEntry[] {
    return [...(this.byPrincipal.get(`User:${user}`) ?? []), ...(this.byPrincipal.get('User:*') ?? [])];
  }

  allowed(user: string, type: ResourceType, name: string, op: Operation): boolean {
    let allow = false;
    for (const e of this.entriesFor(user)) {
      if (!resourceCovers(e, type, name) || !operationCovers(e.operation, op)) continue;
      if (e.permission === 'deny') return false;
      allow = true;
    }
    return allow;
  }

  /** Whether some entry allows `op` on some resource of `type` (for requests that name none, e.g. InitProducerId). */
  allowsSome(user: string, type: ResourceType, op: Operation): boolean {
    return this.entriesFor(user).some((e) => e.permission === 'allow' && e.resourceType === type && operationCovers(e.operation, op));
  }
}
