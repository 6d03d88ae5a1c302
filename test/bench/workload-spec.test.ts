/**
 * bench workload, in-process parts: the workload file parser (every shipped file parses; bad
 * files get a clear WorkloadError; fast-check: any input either parses to an in-range workload
 * or throws a WorkloadError, nothing else), exact histogram merging, and the SVG plot writer.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeHistogram, mergeEncoded, newHistogram, recordMs, summarize } from '../../bench/workload/histogram.ts';
import { plotSvg } from '../../bench/workload/plot.ts';
import { RESULT_FORMAT, type WorkloadResult } from '../../bench/workload/result.ts';
import { parseWorkload, WorkloadError, type Workload } from '../../bench/workload/spec.ts';

const workloadsDir = fileURLToPath(new URL('../../bench/workloads', import.meta.url));

test('every shipped workload file parses, and its name matches its file name', () => {
  const files = readdirSync(workloadsDir).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.length >= 16, `only ${files.length} workload files`);
  for (const f of files) {
    const w = parseWorkload(readFileSync(join(workloadsDir, f), 'utf8'), f);
    assert.equal(`${w.name}.yaml`, f);
  }
});

const minimal = 'name: t\npartitionsPerTopic: 2\nmessageSize: 100\nproducerRate: 0\ntestDurationSeconds: 5\n';

test('a minimal file gets the defaults; JSON works as well as YAML; OMB spellings are accepted', () => {
  const w = parseWorkload(minimal, 'min.yaml');
  assert.deepEqual(
    { topics: w.topics, producersPerTopic: w.producersPerTopic, consumerPerSubscription: w.consumerPerSubscription, subscriptionsPerTopic: w.subscriptionsPerTopic, keyDistributor: w.keyDistributor, warmupSeconds: w.warmupSeconds, acks: w.acks },
    { topics: 1, producersPerTopic: 1, consumerPerSubscription: 1, subscriptionsPerTopic: 1, keyDistributor: 'NO_KEY', warmupSeconds: 0, acks: 'all' },
  );
  const j = parseWorkload(JSON.stringify({ name: 't', partitionsPerTopic: 2, messageSize: 100, producerRate: 0, testDurationMinutes: 0.5, consumersPerTopic: 3 }), 'min.json');
  assert.equal(j.testDurationSeconds, 30);
  assert.equal(j.consumerPerSubscription, 3);
});

test('bad workload files get clear errors naming the file and the field', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /bad\.yaml: expected a mapping of workload fields/],
    ['- a\n- b\n', /expected a mapping.*got a list/],
    ['name: [unclosed\n', /bad\.yaml: not valid YAML or JSON/],
    [minimal.replace('messageSize: 100\n', ''), /missing required field "messageSize"/],
    [minimal + 'partitionPerTopic: 3\n', /unknown field "partitionPerTopic"/],
    [minimal.replace('messageSize: 100', 'messageSize: 4'), /field "messageSize" must be between 8 and/],
    [minimal.replace('messageSize: 100', 'messageSize: 1.5'), /field "messageSize" must be an integer, got number 1.5/],
    [minimal.replace('messageSize: 100', 'messageSize: "100"'), /field "messageSize" must be an integer, got the string "100"/],
    [minimal + 'keyDistributor: ZIPF\n', /field "keyDistributor" must be one of "NO_KEY", "KEY_ROUND_ROBIN", "RANDOM_NANO"/],
    [minimal + 'acks: 2\n', /field "acks" must be one of "all", 1, 0/],
    [minimal.replace('name: t', 'name: "a b"'), /field "name" must be 1-100 characters/],
    [minimal + 'consumerGroups: yes please\n', /field "consumerGroups" must be true or false/],
    [minimal + 'topicConfigs: [1]\n', /field "topicConfigs" must be a mapping/],
    [minimal + 'consumerPerSubscription: 0\n', /subscriptionsPerTopic is 1 but consumerPerSubscription is 0/],
    [minimal + 'consumersPerTopic: 2\nconsumerPerSubscription: 2\n', /given twice/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseWorkload(text, 'bad.yaml'), (e: unknown) => e instanceof WorkloadError && re.test(e.message), `${JSON.stringify(text)} should fail with ${re}`);
  }
});

function assertInRange(w: Workload): void {
  for (const k of ['topics', 'partitionsPerTopic', 'messageSize', 'producersPerTopic', 'consumerPerSubscription', 'subscriptionsPerTopic', 'producerRate', 'warmupSeconds', 'testDurationSeconds', 'idleConnections'] as const) {
    assert.ok(Number.isInteger(w[k]) && w[k] >= 0, `${k} = ${w[k]}`);
  }
  assert.ok(w.messageSize >= 8 && w.partitionsPerTopic >= 1 && w.testDurationSeconds >= 1);
}

test('fuzz: any text or document either parses to an in-range workload or throws a WorkloadError', () => {
  const field = fc.constantFrom('name', 'topics', 'partitionsPerTopic', 'messageSize', 'producersPerTopic', 'consumerPerSubscription', 'subscriptionsPerTopic', 'producerRate', 'keyDistributor', 'warmupSeconds', 'testDurationSeconds', 'acks', 'consumerGroups', 'topicConfigs', 'testDurationMinutes', 'consumersPerTopic', 'bogus');
  const value = fc.oneof(fc.integer({ min: -5, max: 200 }), fc.double(), fc.string(), fc.boolean(), fc.constant(null), fc.constantFrom('NO_KEY', 'all', 't'), fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())), fc.array(fc.integer()));
  const doc = fc.dictionary(field, value);
  const check = (text: string): void => {
    try {
      assertInRange(parseWorkload(text, 'fuzz.yaml'));
    } catch (e) {
      if (!(e instanceof WorkloadError)) throw e;
    }
  };
  fc.assert(fc.property(doc, (d) => check(JSON.stringify(d))), { numRuns: 500 });
  fc.assert(fc.property(doc, (d) => check(Object.entries(d).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n'))), { numRuns: 300 });
  fc.assert(fc.property(fc.string({ maxLength: 200 }), check), { numRuns: 500 });
});

test('histograms merged across processes (encoded, added) equal the histogram of all the values', () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.double({ min: 0.001, max: 5000, noNaN: true }), { maxLength: 200 }), { minLength: 1, maxLength: 5 }), (parts) => {
      const all = newHistogram();
      const merged = newHistogram();
      for (const values of parts) {
        const h = newHistogram();
        for (const v of values) {
          recordMs(h, v);
          recordMs(all, v);
        }
        mergeEncoded(merged, h.totalCount > 0 ? encodeHistogram(h) : '');
        h.destroy();
      }
      assert.deepEqual(summarize(merged), summarize(all));
      merged.destroy();
      all.destroy();
    }),
    { numRuns: 12 },
  );
  // Not an average of percentiles: one slow part moves the merged p99 as a single histogram would.
  const fast = newHistogram();
  const slow = newHistogram();
  for (let i = 0; i < 990; i++) recordMs(fast, 1);
  for (let i = 0; i < 10; i++) recordMs(slow, 1000);
  const m = newHistogram();
  mergeEncoded(m, encodeHistogram(fast));
  mergeEncoded(m, encodeHistogram(slow));
  assert.equal(m.totalCount, 1000);
  assert.equal(summarize(m).p50, 1);
  assert.ok(summarize(m).p999 >= 999 && summarize(m).p999 <= 1001, `p99.9 ${summarize(m).p999}`);
});

function fakeResult(label: string, snapshots = 5): WorkloadResult {
  const lat = { count: 10, p50: 1, p75: 2, p95: 3, p99: 4, p999: 5, max: 6, mean: 1.5 };
  return {
    format: RESULT_FORMAT,
    workload: parseWorkload(minimal, 'min.yaml'),
    driver: 'sluice',
    label,
    startedAt: new Date(0).toISOString(),
    topics: ['t'],
    testSeconds: 5,
    publishRate: 1000,
    publishMBps: 0.1,
    consumeRate: 990,
    consumeMBps: 0.1,
    backlog: 10,
    sent: 5000,
    acked: 5000,
    expected: 5000,
    received: 5000,
    complete: true,
    publishLatencyMs: lat,
    endToEndLatencyMs: { ...lat, p99: 7 },
    snapshots: Array.from({ length: snapshots }, (_, i) => ({ t: i + 1, phase: 'test' as const, publishRate: 1000 + i, consumeRate: 990 + i, backlog: i, publishP50Ms: 1, publishP99Ms: 2, e2eP50Ms: 1.5, e2eP99Ms: 3 + i, e2eP999Ms: 4 + i })),
  };
}

/** Well-formedness, coarsely: one root svg, balanced tags, no raw '<' or '&' in text. */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[3] === '/') continue;
    if (m[1] === '/') assert.equal(stack.pop(), m[2], `unbalanced </${m[2]}>`);
    else stack.push(m[2]!);
  }
  assert.deepEqual(stack, []);
  assert.doesNotMatch(svg.replace(/<[^>]*>/g, ''), /[<]|&(?!(amp|lt|gt|quot|apos);)/);
}

test('bench plot: one result is drawn over time with its series, several as a comparison', () => {
  const one = plotSvg([fakeResult('run <a> & b')]);
  assertWellFormedSvg(one);
  for (const s of ['publish rate', 'consume rate', 'backlog', 'e2e p50', 'e2e p99', 'e2e p99.9', 'publish p99']) assert.match(one, new RegExp(`data-series="${s.replace('.', '\\.')}" d="M`));
  assert.match(one, /run &lt;a&gt; &amp; b/);
  // Five snapshots: five points in the publish-rate line.
  const d = /data-series="publish rate" d="([^"]*)"/.exec(one)![1]!;
  assert.equal(d.split(/[ML]/).filter(Boolean).length, 5);

  const cmp = plotSvg([fakeResult('a'), fakeResult('b'), fakeResult('b')]);
  assertWellFormedSvg(cmp);
  for (const s of ['Publish rate', 'Consume rate', 'End-to-end latency p50', 'End-to-end latency p99', 'Publish latency p99']) assert.match(cmp, new RegExp(`<g data-series="${s}">(\\s*<rect[^>]*><title>[^<]*</title></rect>\\s*<text[^>]*>[^<]*</text>){3}\\s*</g>`));
  assert.match(cmp, /b #2/);
  assert.match(cmp, /b #3/);
});
