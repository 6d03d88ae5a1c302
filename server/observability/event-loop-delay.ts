/**
 * Event-loop delay of the broker process: how late a timer fires, which is how long one piece
 * of synchronous work (a request handler, a log scan) kept every other client waiting. The one
 * number that shows a stall, whatever caused it.
 *
 * Measured with perf_hooks.monitorEventLoopDelay (a libuv timer every resolutionMs, values in
 * a histogram; available in Node, Bun and Deno). Every windowMs the window's p50/p99/max/mean
 * become `lastWindow` (for a metrics endpoint to read: plain numbers in ms) and are logged at
 * debug level; every checkIntervalMs a window whose max reached stallWarnMs is logged at warn
 * level at once (once per window), so a stall is reported seconds after it, not at the end of
 * the window.
 *
 * Invariants:
 * - Memory is constant: one histogram, reset at each window, and a few numbers.
 * - snapshot() never throws and returns finite numbers (0 before the first sample); values
 *   are in milliseconds.
 * - Timers are unref'd: the monitor never keeps the process alive; stop() clears them.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from '../logger.ts';

export interface EventLoopDelayConfig {
  /** Sampling timer period of the histogram; delays are measured to about this precision. */
  resolutionMs: number;
  /** Length of one statistics window (what lastWindow covers). */
  windowMs: number;
  /** How often the running window is checked for a stall. */
  checkIntervalMs: number;
  /** A delay at least this long is a stall: logged at warn level and counted. */
  stallWarnMs: number;
}

export const DEFAULT_EVENT_LOOP_DELAY_CONFIG: EventLoopDelayConfig = {
  resolutionMs: 10,
  windowMs: 10_000,
  checkIntervalMs: 1000,
  stallWarnMs: 1000,
};

export interface EventLoopDelayWindow {
  /** When the window started, epoch ms. */
  startedAtMs: number;
  durationMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Number of samples in the window. */
  samples: number;
}

export interface EventLoopDelaySnapshot {
  /** The last complete window; all zeros until one has completed. */
  lastWindow: EventLoopDelayWindow;
  /** The running window so far. */
  currentWindow: EventLoopDelayWindow;
  /** Longest delay since start. */
  maxMsSinceStart: number;
  /** Windows whose max reached stallWarnMs, since start (a counter). */
  stallsTotal: number;
}

const NS_PER_MS = 1e6;
const round = (ms: number) => Math.round(ms * 1000) / 1000;

function emptyWindow(startedAtMs: number): EventLoopDelayWindow {
  return { startedAtMs, durationMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0, samples: 0 };
}

export class EventLoopDelayMonitor {
  private histogram: IntervalHistogram | null = null;
  private timers: NodeJS.Timeout[] = [];
  private windowStartMs = Date.now();
  private last: EventLoopDelayWindow = emptyWindow(this.windowStartMs);
  private maxMsSinceStart = 0;
  private stallsTotal = 0;
  private warnedThisWindow = false;

  constructor(
    private readonly config: EventLoopDelayConfig,
    private readonly log: Logger,
  ) {
    if (!(config.resolutionMs >= 1 && config.windowMs > 0 && config.checkIntervalMs > 0 && config.stallWarnMs > 0)) {
      throw new Error('event-loop delay settings must be positive (resolutionMs at least 1)');
    }
  }

  start(): void {
    if (this.histogram) return;
    try {
      this.histogram = monitorEventLoopDelay({ resolution: this.config.resolutionMs });
      this.histogram.enable();
    } catch (e) {
      // A runtime without it still serves; the numbers stay 0 and say so in the log.
      this.histogram = null;
      this.log.warn('event-loop delay monitoring is not available in this runtime', { error: e as Error });
      return;
    }
    this.windowStartMs = Date.now();
    this.timers.push(setInterval(() => this.check(), this.config.checkIntervalMs));
    this.timers.push(setInterval(() => this.rotate(), this.config.windowMs));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.histogram?.disable();
    this.histogram = null;
  }

  snapshot(): EventLoopDelaySnapshot {
    const current = this.read();
    return { lastWindow: { ...this.last }, currentWindow: current, maxMsSinceStart: Math.max(this.maxMsSinceStart, current.maxMs), stallsTotal: this.stallsTotal };
  }

  private read(): EventLoopDelayWindow {
    const now = Date.now();
    const h = this.histogram;
    if (!h || h.count === 0) return { ...emptyWindow(this.windowStartMs), durationMs: now - this.windowStartMs };
    return {
      startedAtMs: this.windowStartMs,
      durationMs: now - this.windowStartMs,
      p50Ms: round(h.percentile(50) / NS_PER_MS),
      p99Ms: round(h.percentile(99) / NS_PER_MS),
      maxMs: round(h.max / NS_PER_MS),
      meanMs: round(h.mean / NS_PER_MS),
      samples: h.count,
    };
  }

  /** Warns once per window about a stall, as soon as the loop runs again. */
  private check(): void {
    const w = this.read();
    if (w.maxMs >= this.config.stallWarnMs && !this.warnedThisWindow) {
      this.warnedThisWindow = true;
      this.stallsTotal++;
      this.log.warn('event loop stalled: every client waited', { maxMs: w.maxMs, p99Ms: w.p99Ms, stallWarnMs: this.config.stallWarnMs });
    }
  }

  /** Closes the window: its numbers become lastWindow, and the histogram starts over. */
  private rotate(): void {
    this.check();
    const w = this.read();
    this.last = w;
    this.maxMsSinceStart = Math.max(this.maxMsSinceStart, w.maxMs);
    this.log.debug('event-loop delay', { p50Ms: w.p50Ms, p99Ms: w.p99Ms, maxMs: w.maxMs, meanMs: w.meanMs, samples: w.samples, windowMs: w.durationMs });
    this.histogram?.reset();
    this.windowStartMs = Date.now();
    this.warnedThisWindow = false;
  }
}
