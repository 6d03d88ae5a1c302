// The security settings that only make sense together (broker-config.ts checkSecurity, SPEC §2.5-2.6).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerConfigError, brokerHelp, parseBrokerConfig } from '../../../server/config/broker-config.ts';

const refused = (argv: string[], re: RegExp, env: Record<string, string> = {}) =>
  assert.throws(() => parseBrokerConfig(argv, env), (e: Error) => e instanceof BrokerConfigError && re.test(e.message), argv.join(' '));

test('security settings are checked against each other', () => {
  refused(['--tls-cert', 'c.pem'], /--tls-cert and --tls-key go together/);
  refused(['--tls-key', 'k.pem'], /--tls-cert and --tls-key go together/);
  refused(['--tls-client-auth', 'required'], /needs TLS/);
  refused(['--tls-cert', 'c', '--tls-key', 'k', '--tls-client-auth', 'request'], /needs --tls-ca/);
  refused(['--tls-client-auth', 'sometimes'], /must be one of none, request, required/);
  refused(['--sasl-mechanisms', 'PLAIN'], /needs TLS/);
  refused(['--sasl-mechanisms', 'SCRAM-SHA-1'], /known mechanisms: SCRAM-SHA-256, PLAIN/);
  refused(['--sasl-mechanisms', 'PLAIN,PLAIN', '--sasl-plain-over-plaintext', 'allow'], /twice/);
  refused(['--authentication', 'sasl', '--metadata-url', 'etcd://127.0.0.1:2379'], /needs --inter-broker-sasl-username/);
  refused(['--inter-broker-sasl-username', 'b'], /go together/);
  // Accepted combinations, also from the environment.
  const c = parseBrokerConfig(['--tls-cert', 'c', '--tls-key', 'k', '--tls-ca', 'ca', '--tls-client-auth', 'required', '--sasl-mechanisms', 'SCRAM-SHA-256,PLAIN'], { SLUICE_AUTHENTICATION: 'sasl', SLUICE_INTER_BROKER_SASL_PASSWORD: 'p', SLUICE_INTER_BROKER_SASL_USERNAME: 'b', SLUICE_METADATA_URL: 'etcd://127.0.0.1:2379' });
  assert.ok(c !== 'help');
  assert.equal(c.authentication, 'sasl');
  assert.equal(c.interBrokerSaslPassword, 'p');
  assert.equal(c.tlsClientAuth, 'required');
  const plainAllowed = parseBrokerConfig(['--sasl-mechanisms', 'PLAIN', '--sasl-plain-over-plaintext', 'allow'], {});
  assert.ok(plainAllowed !== 'help' && plainAllowed.saslMechanisms === 'PLAIN');
  const d = parseBrokerConfig([], {});
  assert.ok(d !== 'help' && d.tlsCert === null && d.authentication === 'none' && d.saslMechanisms === 'SCRAM-SHA-256');
  assert.match(brokerHelp(), /--tls-cert FILE/);
  assert.match(brokerHelp(), /SLUICE_INTER_BROKER_SASL_PASSWORD/);
});
