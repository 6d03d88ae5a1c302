/**
 * Logs failed TLS handshakes and failed authentications. A client (or an attacker) retrying in
 * a loop must not become a flood of log lines: the first failure of an interval is logged
 * with its details, the rest are counted and reported with the next line.
 */
import type { Logger } from '../logger.ts';

const LOG_INTERVAL_MS = 10_000;

export class HandshakeFailuresLog {
  private suppressed = 0;
  private lastLogMs = -Infinity;

  constructor(private readonly log: Logger, private readonly message: string) {}

  record(details: Record<string, string>, nowMs = Date.now()): void {
    if (nowMs - this.lastLogMs < LOG_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    this.log.warn(this.message, { ...details, alsoFailedSinceLastLine: this.suppressed });
    this.suppressed = 0;
    this.lastLogMs = nowMs;
  }
}
