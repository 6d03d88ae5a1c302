/**
 * What a request handler returns: a control value and the raw data sections that follow it
 * (record sets read from segment files, written to the socket as they are).
 * NO_REPLY is for Produce with acks=0, which gets no response at all.
 */
export interface Reply {
  control: unknown;
  sections?: readonly Uint8Array[];
  /** Request-level error code (header errorCode); 0 for success. */
  errorCode?: number;
  /** Close the connection once this reply is written (a failed authentication, SPEC §2.6). */
  closeAfter?: boolean;
}

export const NO_REPLY: unique symbol = Symbol('no reply');
export type HandlerResult = Reply | typeof NO_REPLY;

/** Handler asks for the connection to be closed after its reply (acks=0 produce errors). */
export class CloseConnection extends Error {}
