/**
 * The single broker's credential store: `<data-dir>/__metadata/users.json`, a JSON document
 * `{ "version": 1, "users": { NAME: ScramCredential } }` (see credential-store.ts for why it
 * is written by `sluice user` directly).
 *
 * Invariants:
 * - a writer replaces the whole file atomically and durably (writeFileDurableSync: tmp file,
 *   fsync, rename, fsync dir), so a reader sees the old or the new document, never a mix;
 * - writers exclude each other with `users.json.lock` (created O_EXCL, removed after the
 *   write; one older than LOCK_STALE_MS is a crashed writer's and is taken over);
 * - the broker only reads, once per authentication: the file is small, and reading it each
 *   time makes a new or deleted user count from the next connection on;
 * - a file larger than USERS_FILE_BYTES_MAX or not of this shape is refused with a message
 *   (STORAGE_ERROR): nobody authenticates against a store that cannot be read.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { checkUsername, isScramCredential, type ScramCredential } from '../../protocol/sasl/scram.ts';
import { updateLockedJsonFile } from './locked-json-file.ts';
import { USERS_MAX, type CredentialStore } from './credential-store.ts';

const USERS_FILE_BYTES_MAX = 64 * 1024 * 1024;

interface UsersDocument {
  version: 1;
  users: Record<string, ScramCredential>;
}

export class UsersFile implements CredentialStore {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, '__metadata', 'users.json');
  }

  private parse(text: string): UsersDocument {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is not JSON: ${(e as Error).message}`);
    }
    const d = doc as UsersDocument;
    if (typeof d !== 'object' || d === null || d.version !== 1 || typeof d.users !== 'object' || d.users === null || Array.isArray(d.users)) {
      throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is not a version 1 users document`);
    }
    return { version: 1, users: Object.assign(Object.create(null), d.users) as Record<string, ScramCredential> };
  }

  private async read(): Promise<UsersDocument> {
    try {
      const st = await stat(this.file);
      if (st.size > USERS_FILE_BYTES_MAX) throw new SluiceError(ErrorCode.STORAGE_ERROR, `${this.file} is larger than ${USERS_FILE_BYTES_MAX} bytes`);
      return this.parse(await readFile(this.file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, users: Object.create(null) };
      throw e;
    }
  }

  async get(username: string): Promise<ScramCredential | undefined> {
    const c = (await this.read()).users[username];
    return isScramCredential(c) ? c : undefined;
  }

  async list(): Promise<string[]> {
    return Object.keys((await this.read()).users).sort();
  }

  async put(username: string, credential: ScramCredential, replace: boolean): Promise<boolean> {
    checkUsername(username);
    return this.update((doc) => {
      if (!replace && doc.users[username]) return false;
      if (!doc.users[username] && Object.keys(doc.users).length >= USERS_MAX) throw new SluiceError(ErrorCode.INVALID_CONFIG, `the store already holds ${USERS_MAX} users`);
      doc.users[username] = credential;
      return true;
    });
  }

  async delete(username: string): Promise<boolean> {
    return this.update((doc) => {
      if (!doc.users[username]) return false;
      delete doc.users[username];
      return true;
    });
  }

  async close(): Promise<void> {}

  /** Read-modify-write under the lock file; `change` returns whether to write. */
  private update(change: (doc: UsersDocument) => boolean): Promise<boolean> {
    return updateLockedJsonFile(this.file, (text) => {
      const doc: UsersDocument = text === null ? { version: 1, users: Object.create(null) } : this.parse(text);
      return change(doc) ? doc : null;
    });
  }
}
