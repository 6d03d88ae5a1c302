/**
 * What a console page or action gets: the console's Admin (one long-lived client of the
 * broker, over the real protocol), the request's query or form, the access policy, the CSRF
 * token its forms must carry, and the deadline by which it must have answered.
 */
import type http from 'node:http';
import type { Admin } from '../client/admin.ts';
import type { ClientSecurity } from '../client/cluster.ts';
import type { ConsoleAccess } from './access.ts';
import type { SafeHtml } from './html.ts';

export interface PageContext {
  admin: Admin;
  /** host:port of the broker the console belongs to, for the consumers and producers it opens. */
  bootstrap: string;
  /** TLS and SASL for the consumers and producers a page opens (as the Admin's). */
  security: ClientSecurity;
  brokerId: number;
  req: http.IncomingMessage;
  query: URLSearchParams;
  access: ConsoleAccess;
  csrf: string;
  deadlineAtMs: number;
}

export interface Rendered {
  title: string;
  section: string;
  body: SafeHtml;
  status?: number;
}

/** A bad parameter: 400 with this message. */
export class BadRequest extends Error {}

/** A refused mutating action: 403 with this message. */
export class Forbidden extends Error {}

export function intParam(q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new BadRequest(`${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw.slice(0, 100))}`);
  return n;
}

export function requiredParam(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === '') throw new BadRequest(`${name} is required`);
  return v;
}
