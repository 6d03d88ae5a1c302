/**
 * Who may alter the cluster from the console.
 *
 * Without --authentication sasl the only policy is the broker's --console-allow-writes:
 * false (the default) refuses every mutating action (DLQ replay, delayed cancel, topic and
 * group delete) to everyone, true allows them to anyone who can reach the console port.
 *
 * With --authentication sasl the console offers a login (console-server.ts, sessions.ts):
 * a person not signed in reads as the console user (--console-sasl-username) and may alter
 * nothing, whatever --console-allow-writes says (anyone reaching the port would otherwise act
 * as the console user); a signed-in person is offered every action, and the action runs with
 * that person's own authenticated clients, so the broker's ACLs for that person allow or
 * refuse it (a refusal is the 403 page naming the ACL). canAlter does not guess the ACLs:
 * the broker is the one place that decides.
 *
 * Every mutating route asks `canAlter` first, and pages ask `writable` before they show a
 * button; the server hands each request the access of whoever made it.
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

/** With --authentication sasl, not signed in: read-only, and the 403 says how to sign in. */
export function anonymousAccess(): ConsoleAccess {
  return {
    writable: false,
    canAlter: () => false,
    refusal: 'not signed in: sign in (/login) with your SASL user to replay, cancel and delete; the broker\'s ACLs for that user then decide',
  };
}

/** A signed-in person: every action is offered; the broker applies that person's ACLs. */
export function signedInAccess(username: string): ConsoleAccess {
  return {
    writable: true,
    canAlter: () => true,
    refusal: `User:${username} may not do this`,
  };
}
