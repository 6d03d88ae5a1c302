/**
 * Signed-in people of the web console (issue 12): a session per successful login, found by a
 * random id in an HttpOnly, SameSite=Strict cookie, holding that person's authenticated Admin.
 *
 * Why keep the authenticated client rather than a SCRAM salted password: the client library's
 * `sasl` option takes a password (protocol/sasl/sasl-client.ts derives the salted password per
 * connection), so a salted password could not be used without changing the client library.
 * The session keeps the Admin it signed in with, plus the ClientSecurity the pages' own
 * consumers and producers (browse, replay) open with; the password lives only there, in
 * memory, for the client's reconnects: never in the cookie, on disk or in a log. Logout,
 * idle expiry and eviction close the Admin and drop the reference.
 *
 * Invariants: at most SESSIONS_MAX sessions (a new login beyond it evicts the least recently
 * used one); a session unused for SESSION_IDLE_MS is gone (checked on every lookup and swept
 * every SESSION_SWEEP_MS); ids are 32 random bytes, compared only as Map keys.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Admin } from '../client/admin.ts';
import type { ClientSecurity } from '../client/cluster.ts';
import { assert } from '../server/assert.ts';

/** Each session holds its Admin's connections (one per broker it talks to) against the broker's --connections-max (4096 by default). */
export const SESSIONS_MAX = 256;
export const SESSION_IDLE_MS = 30 * 60_000;
const SESSION_SWEEP_MS = 60_000;
export const SESSION_COOKIE = 'sluice_console_session';
const SESSION_ID_CHARS_MAX = 64;

export interface Session {
  readonly id: string;
  readonly username: string;
  readonly admin: Admin;
  /** TLS and SASL (this person's) for the consumers and producers a page opens. */
  readonly security: ClientSecurity;
  lastUsedAtMs: number;
}

export class SessionStore {
  /** In least-recently-used order (a Map keeps insertion order; a lookup re-inserts). */
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly idleMs = SESSION_IDLE_MS, private readonly max = SESSIONS_MAX) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(SESSION_SWEEP_MS, idleMs)).unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  create(username: string, admin: Admin, security: ClientSecurity): Session {
    while (this.sessions.size >= this.max) {
      const oldest = this.sessions.keys().next().value as string;
      this.end(oldest);
    }
    const s: Session = { id: randomBytes(32).toString('base64url'), username, admin, security, lastUsedAtMs: Date.now() };
    this.sessions.set(s.id, s);
    assert(this.sessions.size <= this.max, 'console sessions over SESSIONS_MAX');
    return s;
  }

  /** The live session this request's cookie names, touched; null when none (or expired). */
  lookup(req: http.IncomingMessage): Session | null {
    const id = sessionCookie(req.headers.cookie);
    if (id === null) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    const now = Date.now();
    if (now - s.lastUsedAtMs > this.idleMs) {
      this.end(id);
      return null;
    }
    s.lastUsedAtMs = now;
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  end(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    s.admin.close().catch(() => {});
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (now - s.lastUsedAtMs > this.idleMs) this.end(id);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.admin.close().catch(() => {})));
  }
}

/** The session id from a Cookie header, or null. */
export function sessionCookie(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const v = part.slice(eq + 1).trim();
    return v.length > 0 && v.length <= SESSION_ID_CHARS_MAX && /^[A-Za-z0-9_-]+$/.test(v) ? v : null;
  }
  return null;
}

export function setSessionCookie(id: string, idleMs = SESSION_IDLE_MS): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(idleMs / 1000)}`;
}

export function clearSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}
