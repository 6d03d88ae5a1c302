import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  BROKER_SETTINGS,
  BrokerConfigError,
  brokerHelp,
  defaultBrokerConfig,
  envOf,
  flagOf,
  parseBrokerConfig,
  type BrokerConfig,
} from '../../../server/config/broker-config.ts';
import { DEFAULT_COORDINATOR_CONFIG } from '../../../server/group/group-coordinator.ts';

const parse = (argv: string[], env: Record<string, string> = {}): BrokerConfig => {
  const c = parseBrokerConfig(argv, env);
  assert.notEqual(c, 'help');
  return c as BrokerConfig;
};

test('defaults are the values the broker had before the table (but the ISR lag limit and check interval, lowered for issue 7 item 11)', () => {
  const c = defaultBrokerConfig();
  const MiB = 1024 * 1024;
  const expected: Partial<BrokerConfig> = {
    port: 9292, dataDir: './data', host: '127.0.0.1', advertisedHost: '127.0.0.1', advertisedPort: 9292, metadataUrl: null,
    frameBytesMax: 64 * MiB, pipelinedRequestsMax: 256, fetchResponseBytesMax: 55 * MiB, partialFrameBytesTotalMax: 256 * MiB,
    partialFrameTimeoutMs: 60_000, connectionsMax: 4096, startupConnectionsQueuedMax: 1024, brokerSessionTtlSeconds: 6,
    replicaLagTimeMsMax: 400, replicaFetchResponseBytesMax: 16 * MiB, replicaFetchPartitionBytesMax: 4 * MiB,
    isrCheckIntervalMs: 100, offsetsTopicReplicationFactor: 3, groupsMax: 10_000, offsetsRetentionMs: 7 * 24 * 3600 * 1000,
  };
  for (const [k, v] of Object.entries(expected)) assert.equal(c[k as keyof BrokerConfig], v, k);
  assert.deepEqual(DEFAULT_COORDINATOR_CONFIG, c);
});

test('every setting has a flag and a SLUICE_ variable derived from its name', () => {
  for (const s of BROKER_SETTINGS) {
    assert.match(flagOf(s), /^--[a-z0-9]+(-[a-z0-9]+)*$/);
    assert.match(envOf(s), /^SLUICE_[A-Z0-9]+(_[A-Z0-9]+)*$/);
    assert.equal(envOf(s), `SLUICE_${flagOf(s).slice(2).replaceAll('-', '_').toUpperCase()}`);
    // Units last: no bound named max-first (maxFrameBytes) any more.
    assert.doesNotMatch(s.name, /^max|Max(Bytes|Ms|Seconds)$/, s.name);
  }
  assert.equal(flagOf(BROKER_SETTINGS.find((s) => s.name === 'fetchResponseBytesMax')!), '--fetch-response-bytes-max');
});

test('flags, their old spellings and the environment set the same settings; a flag beats the environment', () => {
  const c = parse(['--max-frame-bytes', '1048576', '--replica-lag-time-max-ms', '1500', '--metadata', 'etcd://127.0.0.1:2379', '--groups-max', '3'], { SLUICE_CONNECTIONS_MAX: '7', SLUICE_GROUPS_MAX: '9' });
  assert.equal(c.frameBytesMax, 1048576);
  assert.equal(c.replicaLagTimeMsMax, 1500);
  assert.equal(c.metadataUrl, 'etcd://127.0.0.1:2379');
  assert.equal(c.connectionsMax, 7);
  assert.equal(c.groupsMax, 3);
  const d = parse(['--frame-bytes-max', '2048', '--replica-lag-time-ms-max', '2500', '--metadata-url', 'etcd://h:1']);
  assert.equal(d.frameBytesMax, 2048);
  assert.equal(d.replicaLagTimeMsMax, 2500);
  assert.equal(d.metadataUrl, 'etcd://h:1');
  // Unrelated SLUICE_ variables (the CLI's SLUICE_DEBUG) are no settings and are ignored.
  assert.equal(parse([], { SLUICE_DEBUG: '1', SLUICE_LOG_LEVEL: 'warn' }).logLevel, 'warn');
});

test('the advertised address follows host and port unless given', () => {
  assert.equal(parse(['--host', '0.0.0.0', '--port', '0']).advertisedHost, '127.0.0.1');
  assert.equal(parse(['--host', '10.0.0.5', '--port', '9000']).advertisedHost, '10.0.0.5');
  assert.equal(parse(['--port', '9000']).advertisedPort, 9000);
  assert.equal(parse(['--port', '9000', '--advertised-port', '19000']).advertisedPort, 19000);
});

test('bad values are refused with one line naming the flag or variable and the bound', () => {
  const refused = (argv: string[], env: Record<string, string>, message: RegExp) =>
    assert.throws(() => parseBrokerConfig(argv, env), (e: Error) => e instanceof BrokerConfigError && message.test(e.message) && !e.message.includes('\n'));
  refused(['--port', '70000'], {}, /^--port is 70000, above its maximum 65535$/);
  refused(['--connections-max', '0'], {}, /^--connections-max is 0, below its minimum 1$/);
  refused([], { SLUICE_CONNECTIONS_MAX: '0' }, /^SLUICE_CONNECTIONS_MAX is 0, below its minimum 1$/);
  refused(['--port', '12x'], {}, /^--port needs an integer/);
  refused(['--port', '1.5'], {}, /^--port needs an integer/);
  refused(['--port'], {}, /^--port needs a value$/);
  refused(['--nope', '1'], {}, /^unknown flag --nope/);
  refused(['--metadata', 'http://x'], {}, /^--metadata takes etcd:\/\//);
  refused(['--log-level', 'loud'], {}, /^--log-level must be one of debug, info, warn, error/);
  refused(['--session-timeout-ms-min', '20000'], {}, /--session-timeout-ms-min \(20000\) must not exceed --session-timeout-ms-default/);
});

test('--help lists every setting with its default, bounds, variable and old spellings', () => {
  assert.equal(parseBrokerConfig(['--port', '1', '--help'], {}), 'help');
  assert.equal(parseBrokerConfig(['-h'], {}), 'help');
  assert.equal(parseBrokerConfig(['--port', 'x', '--help'], { SLUICE_PORT: 'y' }), 'help');
  const help = brokerHelp();
  for (const s of BROKER_SETTINGS) {
    assert.ok(help.includes(`  ${flagOf(s)} `), flagOf(s));
    assert.ok(help.includes(envOf(s)), envOf(s));
    for (const a of s.aliases ?? []) assert.ok(help.includes(a), a);
    if (s.kind === 'int') assert.ok(help.includes(`${s.min}..${s.max}`), s.name);
  }
  assert.ok(help.includes('--max-frame-bytes') && help.includes('--replica-lag-time-max-ms') && help.includes('--broker-session-ttl-seconds'));
  for (const line of help.split('\n')) assert.ok(line.length <= 100, line);
});

test('archive store settings: one store (a directory or a bucket), an endpoint needs a bucket, booleans are true|false', () => {
  const refused = (argv: string[], message: RegExp) => assert.throws(() => parseBrokerConfig(argv, {}), (e: Error) => e instanceof BrokerConfigError && message.test(e.message) && !e.message.includes('\n'));
  refused(['--archive-dir', '/a', '--archive-s3-bucket', 'bkt'], /--archive-dir and --archive-s3-bucket both set/);
  refused(['--archive-s3-endpoint', 'http://127.0.0.1:9000'], /--archive-s3-endpoint needs --archive-s3-bucket/);
  refused(['--archive-s3-endpoint', 'ftp://x', '--archive-s3-bucket', 'bkt'], /--archive-s3-endpoint takes http/);
  refused(['--archive-enable', 'yes'], /--archive-enable must be one of true, false/);
  refused(['--archive-upload-concurrency', '0'], /below its minimum 1/);
  const c = parseBrokerConfig(['--archive-s3-endpoint', 'http://127.0.0.1:9000', '--archive-s3-bucket', 'bkt', '--archive-upload-bytes-per-sec', '1048576'], { SLUICE_ARCHIVE_ENABLE: 'true' });
  assert.ok(c !== 'help');
  assert.deepEqual([c.archiveS3Endpoint, c.archiveS3Bucket, c.archiveS3Region, c.archiveS3PathStyle, c.archiveEnable, c.archiveUploadConcurrency, c.archiveUploadBytesPerSec, c.archiveDir], ['http://127.0.0.1:9000', 'bkt', 'us-east-1', null, 'true', 2, 1048576, null]);
  assert.match(brokerHelp(), /--archive-dir DIR/);
  assert.match(brokerHelp(), /--archive-s3-path-style true\|false/);
});
