/**
 * Latency histograms of the workload driver: built the same way in every process, sent between
 * processes as HdrHistogram's compressed base64 form, and merged by adding counts (exact: the
 * merged histogram is the histogram of all the values; percentiles are never averaged).
 *
 * Invariants: values are microseconds clamped to [1, LATENCY_US_MAX]; every histogram here has
 * the same precision, so add() loses nothing.
 */
import hdr from 'hdr-histogram-js';

/** Latencies above this (1 hour, in µs) are clamped: the histogram needs a bound. */
export const LATENCY_US_MAX = 3_600_000_000;
const SIGNIFICANT_DIGITS = 3;

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: SIGNIFICANT_DIGITS, bitBucketSize: 'packed' });
}

/** Records a latency given in milliseconds (fractions kept to the µs). */
export function recordMs(h: Histogram, ms: number, count = 1): void {
  const us = Math.min(LATENCY_US_MAX, Math.max(1, Math.round(ms * 1000)));
  if (count === 1) h.recordValue(us);
  else h.recordValueWithCount(us, count);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Adds an encoded histogram (from encodeHistogram) into `into`. */
export function mergeEncoded(into: Histogram, encoded: string): void {
  if (encoded.length === 0) return;
  const h = hdr.decodeFromCompressedBase64(encoded, 'packed', false);
  into.add(h);
  h.destroy();
}

export interface LatencySummaryMs {
  count: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarize(h: Histogram): LatencySummaryMs {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, p50: 0, p75: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p75: ms(h.getValueAtPercentile(75)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.getValueAtPercentile(100)),
    mean: Math.round(h.mean) / 1000,
  };
}
