/**
 * Who may alter the cluster from the console: the seam for authentication.
 *
 * The console has no login of its own yet, so the only policy here is the broker's
 * --console-allow-writes: false (the default) refuses every mutating action (DLQ replay,
 * delayed cancel, topic and group delete) to everyone, true allows them to anyone who can
 * reach the console port. Every mutating route asks `canAlter` first, and pages ask it
 * before they show a button. Underneath, with --authentication sasl the console's clients
 * authenticate as --console-sasl-username, and the broker applies that user's ACLs to every
 * read and action whatever this policy says.
 *
 * Plugging people in: implement ConsoleAccess with a login that checks SASL credentials
 * against the broker's users (a SCRAM exchange with the broker), keeps a session cookie, and
 * answers canAlter from the user's ACLs; the pages' clients would then authenticate as that
 * user instead of the console user, so the broker enforces each person's ACLs.
 */
import type http from 'node:http';

export type ConsoleAction = 'dlq-replay' | 'delayed-cancel' | 'topic-delete' | 'group-delete';

export interface ConsoleAccess {
  /** Whether this request may perform `action` on `resource` (a topic name, group id, delayed id). */
  canAlter(req: http.IncomingMessage, action: ConsoleAction, resource: string): boolean;
  /** Shown on pages: whether mutating buttons are offered at all. */
  readonly writable: boolean;
  /** Why a refused action was refused, for the 403 page. */
  readonly refusal: string;
}

/** --console-allow-writes: everyone or no one. */
export function writesFlagAccess(allowWrites: boolean): ConsoleAccess {
  return {
    writable: allowWrites,
    canAlter: () => allowWrites,
    refusal: 'the console is read-only: start the broker with --console-allow-writes true to allow replay, cancel and delete',
  };
}
