/**
 * Where users' SCRAM credentials live (SPEC §2.6; README "Security"): salted and hashed
 * (ScramCredential: salt, iterations, StoredKey, ServerKey), never a password. Two stores,
 * one per metadata store:
 * - single broker: `<data-dir>/__metadata/users.json` (UsersFile, users-file.ts), beside the
 *   embedded metadata store's files;
 * - cluster: etcd keys `<prefix>users/<name>` (etcd-credential-store.ts), beside the
 *   cluster metadata.
 *
 * Why the CLI writes the store directly instead of going through an admin API of the broker:
 * the first user of a broker that requires authentication must exist before anyone can
 * authenticate to create it (Kafka's KRaft mode does the same with `kafka-storage format
 * --add-scram`), and it takes no API key beyond the two SASL ones reserved for this work. The
 * cost: `sluice user` needs access to the data dir (single broker, same machine) or to etcd.
 * Brokers read a credential at every authentication, so a created, changed or deleted user
 * takes effect on the next connection, without a restart.
 *
 * Invariants: every value read is checked with isScramCredential before use (a corrupt or
 * hand-edited entry is an unknown user, never a crash); names are checked with
 * checkUsername; at most USERS_MAX users.
 */
import type { ScramCredential } from '../../protocol/sasl/scram.ts';

export const USERS_MAX = 100_000;

export interface CredentialStore {
  get(username: string): Promise<ScramCredential | undefined>;
  /** Creates the user (false if it exists and `replace` is not set), or replaces its credential. */
  put(username: string, credential: ScramCredential, replace: boolean): Promise<boolean>;
  /** False when no such user existed. */
  delete(username: string): Promise<boolean>;
  list(): Promise<string[]>;
  close(): Promise<void>;
}

/** The store for a broker or a `sluice user` command: etcd for a cluster, the data dir's file otherwise. */
export async function openCredentialStore(where: { metadataUrl: string | null; dataDir: string }): Promise<CredentialStore> {
  if (where.metadataUrl) {
    const { EtcdCredentialStore } = await import('./etcd-credential-store.ts');
    return new EtcdCredentialStore(where.metadataUrl);
  }
  const { UsersFile } = await import('./users-file.ts');
  return new UsersFile(where.dataDir);
}
