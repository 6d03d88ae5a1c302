// ACL matching (server/security/acl.ts) and the API table (authorizer.ts), in process (SPEC §2.7).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey } from '../../../protocol/api-keys.ts';
import { AclFormatError, AclSet, aclId, checkAclEntry, type AclEntry } from '../../../server/security/acl.ts';
import { AUTHORIZED_APIS, needsOf } from '../../../server/security/authorizer.ts';

const allow = (principal: string, resourceType: AclEntry['resourceType'], name: string, operation: AclEntry['operation'], patternType: AclEntry['patternType'] = 'literal'): AclEntry => ({ principal, resourceType, patternType, name, operation, permission: 'allow' });
const deny = (e: AclEntry): AclEntry => ({ ...e, permission: 'deny' });

test('matching: literal, *, prefixed, User:*, implied describe, deny wins, default deny', () => {
  const set = new AclSet([
    allow('User:alice', 'topic', 'orders', 'read'),
    allow('User:alice', 'topic', 'tmp-', 'all', 'prefixed'),
    deny(allow('User:alice', 'topic', 'tmp-secret', 'read')),
    allow('User:*', 'group', '*', 'describe'),
    allow('User:bob', 'cluster', 'cluster', 'alter'),
  ]);
  assert.ok(set.allowed('alice', 'topic', 'orders', 'read'));
  assert.ok(set.allowed('alice', 'topic', 'orders', 'describe'), 'read implies describe');
  assert.ok(!set.allowed('alice', 'topic', 'orders', 'write'));
  assert.ok(!set.allowed('alice', 'topic', 'orders2', 'read'), 'literal is exact');
  assert.ok(set.allowed('alice', 'topic', 'tmp-x', 'delete'), 'prefixed, all');
  assert.ok(!set.allowed('alice', 'topic', 'tmp-secret', 'read'), 'deny wins over the prefixed allow');
  assert.ok(set.allowed('alice', 'topic', 'tmp-secret', 'write'), 'deny only for its operation');
  assert.ok(set.allowed('carol', 'group', 'anything', 'describe'), 'User:* and *');
  assert.ok(!set.allowed('carol', 'group', 'anything', 'read'));
  assert.ok(!set.allowed('carol', 'topic', 'orders', 'describe'), 'default deny');
  assert.ok(set.allowed('bob', 'cluster', 'cluster', 'describe'), 'alter implies describe');
  assert.ok(!set.allowed('bob', 'topic', 'cluster', 'alter'), 'resource types do not mix');
  assert.ok(set.allowsSome('alice', 'topic', 'write'));
  assert.ok(!set.allowsSome('carol', 'topic', 'write'));
});

test('entries are checked; ids are stable and content-addressed', () => {
  const e = allow('User:alice', 'topic', 'orders', 'read');
  assert.equal(aclId(e), aclId({ ...e }));
  assert.notEqual(aclId(e), aclId(deny(e)));
  for (const bad of [{ ...e, principal: 'alice' }, { ...e, operation: 'eat' }, { ...e, resourceType: 'cluster' }, { ...e, name: '' }, { ...e, permission: 'maybe' }, null, 'x']) {
    assert.throws(() => checkAclEntry(bad), AclFormatError, JSON.stringify(bad));
  }
  assert.deepEqual(checkAclEntry({ ...e, extra: 1 }), e, 'unknown fields dropped');
});

test('every API of api-keys.ts has a deliberate entry in the authorization table', () => {
  const exempt = new Set<number>([ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE]);
  for (const [name, key] of Object.entries(ApiKey)) {
    if (!exempt.has(key)) assert.ok(AUTHORIZED_APIS.has(key), `${name} (${key}) has no entry in server/security/authorizer.ts needsOf (SPEC §2.7)`);
  }
  assert.deepEqual(needsOf(ApiKey.FETCH, { replicaId: 2, topics: [{ topic: 't', partitions: [] }] }), { all: [['cluster', 'cluster', 'alter']] });
  assert.deepEqual(needsOf(ApiKey.FETCH, { topics: [{ topic: 't', partitions: [] }, { topic: 't', partitions: [] }] }), { all: [['topic', 't', 'read']] });
  assert.deepEqual(needsOf(ApiKey.METADATA, { topics: ['x'] }), { all: [] });
  assert.deepEqual(needsOf(999, {}), { all: [['cluster', 'cluster', 'alter']] });
});

test('stored entries and credentials: any JSON value is checked without throwing anything else', async () => {
  const fc = (await import('fast-check')).default;
  const { isScramCredential } = await import('../../../protocol/sasl/scram.ts');
  const field = fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom('User:alice', 'User:*', 'topic', 'group', 'cluster', 'literal', 'prefixed', 'read', 'all', 'allow', 'deny', 'SCRAM-SHA-256', 'AAAA', 'x'.repeat(44)), fc.integer(), fc.constant(null));
  const entryish = fc.record({ principal: field, resourceType: field, patternType: field, name: field, operation: field, permission: field, mechanism: field, salt: field, iterations: fc.oneof(fc.integer(), field), storedKey: field, serverKey: field }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(fc.jsonValue(), entryish), (v) => {
    try {
      const e = checkAclEntry(v);
      assert.deepEqual(checkAclEntry(e), e, 'a checked entry checks again');
    } catch (err) {
      if (!(err instanceof AclFormatError)) throw err;
    }
    assert.equal(typeof isScramCredential(v), 'boolean');
  }), { numRuns: 5000 });
});
