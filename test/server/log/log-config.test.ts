import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { DEFAULT_LOG_CONFIG, LOG_CONFIG_KEYS, parseLogConfig, topicConfigToStrings, effectiveLocalRetentionBytes, effectiveLocalRetentionMs } from '../../../server/log/log-config.ts';

function invalidConfig(fn: () => unknown, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.INVALID_CONFIG && detail.test(e.message));
}

test('defaults', () => {
  const c = parseLogConfig({});
  assert.deepEqual(c, DEFAULT_LOG_CONFIG);
  assert.equal(c.retentionMs, 1_209_600_000);
  assert.equal(c.retentionBytes, -1);
  assert.equal(c.segmentBytes, 1_073_741_824);
  assert.equal(c.segmentMs, 604_800_000);
  assert.equal(c.indexIntervalBytes, 4096);
  assert.equal(c.flushMessages, 50_000);
  assert.equal(c.flushMs, 1000);
  assert.equal(c.flushBeforeAck, false);
  assert.equal(c.maxMessageBytes, 8_388_608);
  assert.equal(c.cleanupPolicy, 'delete');
});

test('parses every key and round-trips through topicConfigToStrings', () => {
  const c = parseLogConfig({ 'retention.ms': '-1', 'retention.bytes': '1048576', 'segment.bytes': '1024', 'segment.ms': '60000', 'index.interval.bytes': '0', 'flush.messages': '1', 'flush.ms': '0', 'flush.before.ack': 'true', 'max.message.bytes': '1000', 'cleanup.policy': 'delete' });
  assert.equal(c.retentionMs, -1);
  assert.equal(c.segmentBytes, 1024);
  assert.equal(c.flushBeforeAck, true);
  const strings = topicConfigToStrings(c);
  assert.deepEqual(Object.keys(strings).sort(), [...LOG_CONFIG_KEYS].sort());
  assert.deepEqual(parseLogConfig(strings), c);
});

test('rejects unknown keys and bad values with INVALID_CONFIG', () => {
  invalidConfig(() => parseLogConfig({ 'retention.hours': '1' }), /unknown/);
  invalidConfig(() => parseLogConfig(JSON.parse('{"__proto__": "1"}') as Record<string, string>), /unknown/);
  invalidConfig(() => parseLogConfig({ toString: '1' }), /unknown/);
  invalidConfig(() => parseLogConfig({ 'segment.bytes': '1023' }), /segment\.bytes/);
  invalidConfig(() => parseLogConfig({ 'segment.bytes': '1e6' }), /not an integer/);
  invalidConfig(() => parseLogConfig({ 'segment.bytes': '' }), /not an integer/);
  invalidConfig(() => parseLogConfig({ 'retention.ms': '-2' }), /retention\.ms/);
  invalidConfig(() => parseLogConfig({ 'flush.before.ack': 'yes' }), /true or false/);
  invalidConfig(() => parseLogConfig({ 'cleanup.policy': 'compaction' }), /delete/);
  invalidConfig(() => parseLogConfig({ 'max.message.bytes': '99999999999' }), /between/);
});

test('tiered storage keys: archive.enable, local.retention.ms|bytes (-2 = the total); archive.enable refuses a compacted topic', () => {
  const d = parseLogConfig({});
  assert.equal(d.archiveEnable, false);
  assert.equal(effectiveLocalRetentionMs(d), d.retentionMs);
  assert.equal(effectiveLocalRetentionBytes(d), d.retentionBytes);
  const c = parseLogConfig({ 'archive.enable': 'true', 'local.retention.ms': '60000', 'local.retention.bytes': '1048576', 'retention.ms': '-1' });
  assert.deepEqual([c.archiveEnable, effectiveLocalRetentionMs(c), effectiveLocalRetentionBytes(c), c.retentionMs], [true, 60000, 1048576, -1]);
  invalidConfig(() => parseLogConfig({ 'archive.enable': 'true', 'cleanup.policy': 'compact' }), /archive\.enable.*cleanup\.policy=delete/);
  invalidConfig(() => parseLogConfig({ 'archive.enable': 'true', 'cleanup.policy': 'compact,delete' }), /cleanup\.policy=delete/);
  invalidConfig(() => parseLogConfig({ 'archive.enable': 'yes' }), /true or false/);
  invalidConfig(() => parseLogConfig({ 'local.retention.ms': '-3' }), /local\.retention\.ms/);
  assert.equal(parseLogConfig({ 'archive.enable': 'false', 'cleanup.policy': 'compact' }).archiveEnable, false);
  // The local tier is part of the total.
  invalidConfig(() => parseLogConfig({ 'retention.bytes': '1000', 'local.retention.bytes': '2000' }), /local\.retention\.bytes.*must not exceed retention\.bytes \(1000\)/);
  invalidConfig(() => parseLogConfig({ 'retention.ms': '1000', 'local.retention.ms': '-1' }), /local\.retention\.ms/);
  assert.equal(parseLogConfig({ 'retention.bytes': '-1', 'local.retention.bytes': '2000' }).localRetentionBytes, 2000);
  assert.equal(parseLogConfig({ 'retention.ms': '1000', 'local.retention.ms': '1000' }).localRetentionMs, 1000);
});
