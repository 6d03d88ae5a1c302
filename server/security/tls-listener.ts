/**
 * The broker's TLS settings, read once at start-up: the listener's secure context
 * (certificate, key, CA and client-certificate policy) and the options a broker uses when it
 * dials another broker (replica fetchers, the transaction marker sender).
 *
 * Design (SPEC §2.5): ONE port. With --tls-cert/--tls-key the broker's only listener speaks
 * TLS and nothing else, like a Kafka SSL listener; a plaintext client is refused by the TLS
 * handshake. Without them it speaks plaintext only. There is no mixed mode and no STARTTLS:
 * a port whose protocol depends on the first bytes invites downgrade mistakes.
 *
 * Invariants:
 * - cert and key come together or not at all; client-auth `request`/`required` needs a CA
 *   to verify client certificates against (checked by the config table, broker-config.ts);
 * - files are read once, at start-up: a missing or unreadable file stops the start with a
 *   message naming the flag, before anything is written to the data dir;
 * - in a TLS cluster every broker dials its peers over TLS, verifying them against --tls-ca
 *   (the system roots without it), and presents its own certificate as a client
 *   certificate so that peers with client-auth `required` accept it.
 */
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { BrokerConfig } from '../config/broker-config.ts';
import { BrokerConfigError } from '../config/broker-config.ts';
import type { TlsClientOptions } from '../../protocol/connection.ts';

export interface BrokerTls {
  /** Options for tls.createServer. */
  server: tls.TlsOptions;
  /** What this broker uses to dial other brokers. */
  client: TlsClientOptions;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new BrokerConfigError(`${flag} ${path}: ${(e as Error).message}`);
  }
}

/** null when the broker is configured for plaintext. */
export function loadBrokerTls(c: BrokerConfig): BrokerTls | null {
  if (!c.tlsCert || !c.tlsKey) return null;
  const cert = readPem(c.tlsCert, '--tls-cert');
  const key = readPem(c.tlsKey, '--tls-key');
  const ca = c.tlsCa ? readPem(c.tlsCa, '--tls-ca') : undefined;
  const server: tls.TlsOptions = {
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert: c.tlsClientAuth !== 'none',
    // 'request': a certificate is asked for and, if sent, must verify; none is also fine.
    // Node's rejectUnauthorized refuses a missing one too, so 'request' checks by hand in
    // the secureConnection handler (broker.ts) instead.
    rejectUnauthorized: c.tlsClientAuth === 'required',
    handshakeTimeout: c.tlsHandshakeTimeoutMs,
    minVersion: 'TLSv1.2',
  };
  return { server, client: { ...(ca ? { ca } : {}), cert, key } };
}
