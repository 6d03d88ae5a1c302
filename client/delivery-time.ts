/**
 * Delivery times on the client (SPEC §8.8): what `deliverAt` / `delayMs` on a message, and
 * `--delay` / `--deliver-at` on the CLI, mean, checked at send so a bad value fails there with
 * a clear message instead of as a broker error for the whole batch.
 *
 * Invariants:
 * - deliveryTimeOf returns an integer ms since the epoch in 0 … 10^15-1 (the header's 15 digits),
 *   never earlier than asked (fractions round up: "not before"), or -1 for "no delivery time";
 * - a delivery time more than DELAY_MS_MAX after the client's clock is refused (the broker's
 *   default delayedDeliveryMaxMs; a broker configured lower refuses with INVALID_DELIVERY_TIME);
 * - a time in the past is allowed and means "now": the broker appends such a batch at once.
 */
import { DELIVER_AT_DIGITS_MAX } from '../protocol/delayed-batch.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';

/** Longest delay a client asks for: 400 days, the broker's default delayedDeliveryMaxMs (SPEC §8.8). */
export const DELAY_MS_MAX = 400 * 24 * 60 * 60 * 1000;
/** Largest delivery time the header can carry (15 decimal digits). */
const DELIVER_AT_MS_MAX = 10 ** DELIVER_AT_DIGITS_MAX - 1;

/** ms as ISO text when a Date can hold it (|ms| ≤ 8.64e15), else the number. */
function isoOrMs(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

function invalid(message: string): SluiceError {
  return new SluiceError(ErrorCode.INVALID_DELIVERY_TIME, message);
}

/**
 * The delivery time of a message, ms since the epoch, or -1 when it has none. Throws
 * SluiceError INVALID_DELIVERY_TIME for: both deliverAt and delayMs; a delay that is not a
 * finite number ≥ 0 or is above DELAY_MS_MAX; a deliverAt that is not a valid Date or a finite
 * number ≥ 0, or is more than DELAY_MS_MAX after nowMs.
 */
export function deliveryTimeOf(deliverAt: Date | number | null | undefined, delayMs: number | null | undefined, nowMs: number): number {
  const hasAt = deliverAt !== undefined && deliverAt !== null;
  const hasDelay = delayMs !== undefined && delayMs !== null;
  if (!hasAt && !hasDelay) return -1;
  if (hasAt && hasDelay) throw invalid('deliverAt and delayMs exclude each other: give one');
  let atMs: number;
  if (hasDelay) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) throw invalid(`delayMs must be a number of ms >= 0, not ${String(delayMs)}`);
    if (delayMs > DELAY_MS_MAX) throw invalid(`delayMs ${delayMs} is beyond the maximum delay of ${DELAY_MS_MAX} ms (400 days)`);
    atMs = Math.ceil(nowMs + delayMs);
  } else {
    const v = deliverAt instanceof Date ? deliverAt.getTime() : deliverAt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalid(`deliverAt must be a valid Date or ms since the epoch >= 0, not ${String(deliverAt)}`);
    atMs = Math.ceil(v);
    if (atMs - nowMs > DELAY_MS_MAX) throw invalid(`deliverAt ${isoOrMs(atMs)} is more than the maximum delay of ${DELAY_MS_MAX} ms (400 days) from now`);
  }
  // Unreachable with the checks above (now + 400 days has 13 digits), kept as the header's bound.
  if (atMs > DELIVER_AT_MS_MAX) throw invalid(`delivery time ${atMs} does not fit the header's ${DELIVER_AT_DIGITS_MAX} digits`);
  return atMs;
}

let lastAtMs = -1;
let lastValue: Uint8Array = new Uint8Array(0);

/**
 * The `sluice-deliver-at-ms` header value for atMs (decimal ASCII). Records sent together
 * mostly share a time, so the last value is reused: the records only read it.
 */
export function deliverAtHeaderValue(atMs: number): Uint8Array {
  if (atMs !== lastAtMs) {
    const s = String(atMs);
    const b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    lastValue = b;
    lastAtMs = atMs;
  }
  return lastValue;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A CLI duration: a non-negative number with a unit ms, s, m, h or d (`30m`, `1.5h`, `0`;
 * a bare number is ms). Throws with a message naming the input otherwise, or when negative.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw invalid(`${JSON.stringify(text)} is not a duration: a number with a unit ms, s, m, h or d (e.g. 30m, 2h, 500ms)`);
  const n = Number(m[1]);
  if (n < 0) throw invalid(`a delay cannot be negative: ${JSON.stringify(text)}`);
  const ms = n * UNIT_MS[m[2] ?? 'ms']!;
  if (ms > DELAY_MS_MAX) throw invalid(`delay ${JSON.stringify(text)} is beyond the maximum delay of 400 days`);
  return Math.ceil(ms);
}

/**
 * A CLI point in time: ISO 8601 with a date and, when it has a time, a zone (`Z` or ±hh:mm),
 * so the same text means the same instant on every machine; or ms since the epoch (digits).
 */
export function parseInstant(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(t)) {
    throw invalid(`${JSON.stringify(text)} is not an ISO time with a zone (e.g. 2026-12-01T10:00:00Z) or ms since the epoch`);
  }
  const ms = Date.parse(t);
  if (!Number.isFinite(ms)) throw invalid(`${JSON.stringify(text)} is not a valid time`);
  return ms;
}
