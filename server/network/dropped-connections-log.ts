/**
 * Logs connections refused for exceeding connectionsMax. A flood of connection attempts must
 * not become a flood of log lines: one warning per interval, with the count since the last.
 */
import type { Logger } from '../logger.ts';

const LOG_INTERVAL_MS = 10_000;

export class DroppedConnectionsLog {
  private count = 0;
  private lastLogMs = 0;

  constructor(private readonly log: Logger, private readonly connectionsMax: number) {}

  record(nowMs = Date.now()): void {
    this.count++;
    if (nowMs - this.lastLogMs < LOG_INTERVAL_MS) return;
    this.log.warn('connection limit reached, closing new connections', { connectionsMax: this.connectionsMax, dropped: this.count });
    this.count = 0;
    this.lastLogMs = nowMs;
  }
}
