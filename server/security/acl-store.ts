/**
 * Where ACL entries live, beside the users (credential-store.ts, and for the same reasons
 * written by `sluice acl` directly): a single broker's `<data-dir>/__metadata/acls.json`
 * (`{ "version": 1, "acls": [AclEntry] }`, replaced atomically under a lock file like
 * users.json), a cluster's etcd keys `<prefix>acls/<aclId>` (value: the entry as JSON).
 *
 * Invariants: at most ACLS_MAX entries; every entry read is checked (checkAclEntry) and one
 * that fails is skipped and reported through `invalid`, never trusted and never a crash.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Etcd3, Namespace } from 'etcd3';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { updateLockedJsonFile } from './locked-json-file.ts';
import { DEFAULT_ETCD_PREFIX, boundedEtcdClient } from '../metadata/etcd-store.ts';
import { aclId, ACLS_MAX, checkAclEntry, type AclEntry } from './acl.ts';

export interface AclStore {
  /** Entries in force; `invalid` counts stored entries that failed their check. */
  list(): Promise<{ acls: AclEntry[]; invalid: number }>;
  /** False when the entry was already there. */
  add(e: AclEntry): Promise<boolean>;
  /** False when no such entry existed. */
  remove(e: AclEntry): Promise<boolean>;
  close(): Promise<void>;
}

export function openAclStore(where: { metadataUrl: string | null; dataDir: string }): AclStore {
  return where.metadataUrl ? new EtcdAclStore(where.metadataUrl) : new AclFile(where.dataDir);
}

function checked(raw: unknown[]): { acls: AclEntry[]; invalid: number } {
  const acls: AclEntry[] = [];
  let invalid = 0;
  for (const r of raw.slice(0, ACLS_MAX)) {
    try {
      acls.push(checkAclEntry(r));
    } catch {
      invalid++;
    }
  }
  return { acls, invalid: invalid + Math.max(0, raw.length - ACLS_MAX) };
}

const FILE_BYTES_MAX = 64 * 1024 * 1024;

class AclFile implements AclStore {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, '__metadata', 'acls.json');
  }

  private parse(text: string): unknown[] {
    let doc: { version?: unknown; acls?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is not JSON: ${(e as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || doc.version !== 1 || !Array.isArray(doc.acls)) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is not a version 1 ACL document`);
    return doc.acls;
  }

  async list(): Promise<{ acls: AclEntry[]; invalid: number }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { acls: [], invalid: 0 };
      throw e;
    }
    if (text.length > FILE_BYTES_MAX) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is larger than ${FILE_BYTES_MAX} bytes`);
    return checked(this.parse(text));
  }

  add(e: AclEntry): Promise<boolean> {
    const id = aclId(e);
    return this.update((acls) => {
      if (acls.some((a) => aclId(a) === id)) return null;
      if (acls.length >= ACLS_MAX) throw new SluiceError(ErrorCode.INVALID_CONFIG, `the store already holds ${ACLS_MAX} ACL entries`);
      return [...acls, e];
    });
  }

  remove(e: AclEntry): Promise<boolean> {
    const id = aclId(e);
    return this.update((acls) => {
      const rest = acls.filter((a) => aclId(a) !== id);
      return rest.length === acls.length ? null : rest;
    });
  }

  async close(): Promise<void> {}

  private update(change: (acls: AclEntry[]) => AclEntry[] | null): Promise<boolean> {
    return updateLockedJsonFile(this.file, (text) => {
      const next = change(text === null ? [] : checked(this.parse(text)).acls);
      return next === null ? null : { version: 1, acls: next };
    });
  }
}

const REQUEST_TIMEOUT_MS = 5_000;

class EtcdAclStore implements AclStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;

  constructor(url: string, prefix = DEFAULT_ETCD_PREFIX) {
    this.client = boundedEtcdClient(url, REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    this.ns = this.client.namespace(`${prefix}acls/`);
  }

  private async call<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `etcd: ${what}: ${(e as Error).message}`);
    }
  }

  async list(): Promise<{ acls: AclEntry[]; invalid: number }> {
    const all = await this.call('list ACLs', this.ns.getAll().limit(ACLS_MAX + 1).strings());
    return checked(Object.values(all).map((v) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return null;
      }
    }));
  }

  async add(e: AclEntry): Promise<boolean> {
    const id = aclId(e);
    const res = await this.call('add ACL', this.ns.if(id, 'Create', '==', 0).then(this.ns.put(id).value(JSON.stringify(e))).commit());
    return res.succeeded;
  }

  async remove(e: AclEntry): Promise<boolean> {
    const res = await this.call('remove ACL', this.ns.delete().key(aclId(e)).exec());
    return Number(res.deleted) > 0;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
