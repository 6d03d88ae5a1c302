/**
 * The cluster's credential store: one etcd key per user, `<prefix>users/<encoded name>`
 * (prefix /sluice/ as the metadata, etcd-store.ts; the name URI-encoded so that '/' cannot
 * reach into another key), its value a ScramCredential as JSON. Creation is a txn on the
 * key's absence, so two `sluice user create` of one name cannot both succeed. See
 * credential-store.ts for why the CLI writes here directly.
 *
 * Invariants: every call is bounded by REQUEST_TIMEOUT_MS; a value that is not a credential
 * reads as an unknown user; the broker reads the key at each authentication (one range read).
 */
import type { Etcd3, Namespace } from 'etcd3';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { checkUsername, isScramCredential, type ScramCredential } from '../../protocol/sasl/scram.ts';
import { DEFAULT_ETCD_PREFIX, boundedEtcdClient } from '../metadata/etcd-store.ts';
import { USERS_MAX, type CredentialStore } from './credential-store.ts';

const REQUEST_TIMEOUT_MS = 5_000;
const USERS_PREFIX = 'users/';

export class EtcdCredentialStore implements CredentialStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;

  constructor(url: string, prefix = DEFAULT_ETCD_PREFIX) {
    this.client = boundedEtcdClient(url, REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    this.ns = this.client.namespace(prefix + USERS_PREFIX);
  }

  private async call<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `etcd: ${what}: ${(e as Error).message}`);
    }
  }

  async get(username: string): Promise<ScramCredential | undefined> {
    const raw = await this.call('read user', this.ns.get(encodeURIComponent(username)).string());
    if (raw === null) return undefined;
    try {
      const c: unknown = JSON.parse(raw);
      return isScramCredential(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  async put(username: string, credential: ScramCredential, replace: boolean): Promise<boolean> {
    checkUsername(username);
    const key = encodeURIComponent(username);
    const value = JSON.stringify(credential);
    if (replace) {
      await this.call('write user', this.ns.put(key).value(value).exec());
      return true;
    }
    if ((await this.list()).length >= USERS_MAX) throw new SluiceError(ErrorCode.INVALID_CONFIG, `the store already holds ${USERS_MAX} users`);
    const res = await this.call('create user', this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(value)).commit());
    return res.succeeded;
  }

  async delete(username: string): Promise<boolean> {
    const res = await this.call('delete user', this.ns.delete().key(encodeURIComponent(username)).exec());
    return Number(res.deleted) > 0;
  }

  async list(): Promise<string[]> {
    const keys = await this.call('list users', this.ns.getAll().limit(USERS_MAX).keys());
    return keys.map((k) => decodeURIComponent(k)).sort();
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
