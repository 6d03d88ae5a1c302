/**
 * SaslHandshake (key 27) and SaslAuthenticate (key 28), SPEC §6.28-6.29 and §2.6: Kafka's
 * shape. The handshake names the mechanism; each SaslAuthenticate carries one message of that
 * mechanism as `authBytes` (a string: SCRAM and PLAIN messages are UTF-8 text, and the control
 * section's MessagePack subset has no bin type) and the broker answers with its next message.
 */
import type { Schema } from '../schema.ts';

export interface SaslHandshakeRequest { mechanism: string }
export interface SaslHandshakeResponse { mechanisms: string[] }
export interface SaslAuthenticateRequest { authBytes: string }
/** complete: the connection is authenticated (for SCRAM: authBytes is then the server-final-message). */
export interface SaslAuthenticateResponse { authBytes: string; complete: boolean }

export const saslHandshakeRequestSchema: Schema = { fields: { mechanism: 'string' } };
export const saslHandshakeResponseSchema: Schema = { fields: { mechanisms: { array: 'string' } } };
export const saslAuthenticateRequestSchema: Schema = { fields: { authBytes: 'string' } };
export const saslAuthenticateResponseSchema: Schema = { fields: { authBytes: 'string', complete: 'bool' } };
