/**
 * The console's session store (console/sessions.ts) in process: its bound (the least recently
 * used session goes, its client closed), idle expiry, and the session cookie's parsing and
 * attributes. The Admins are real but never connect (nothing is asked of them).
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { SESSION_COOKIE, SessionStore, sessionCookie, setSessionCookie } from '../../console/sessions.ts';

const requestWith = (id: string): http.IncomingMessage => ({ headers: { cookie: `other=1; ${SESSION_COOKIE}=${id}` } }) as http.IncomingMessage;
const newAdmin = () => new Admin({ bootstrap: '127.0.0.1:1' });

test('at most max sessions: a new one evicts the least recently used, whose client is closed', async () => {
  const store = new SessionStore(60_000, 2);
  try {
    const a = store.create('a', newAdmin(), {});
    const b = store.create('b', newAdmin(), {});
    assert.equal(store.lookup(requestWith(a.id))?.username, 'a'); // a is now the most recent
    const c = store.create('c', newAdmin(), {});
    assert.equal(store.size, 2);
    assert.equal(store.lookup(requestWith(b.id)), null);
    assert.equal(store.lookup(requestWith(a.id))?.username, 'a');
    assert.equal(store.lookup(requestWith(c.id))?.username, 'c');
    store.end(a.id);
    assert.equal(store.lookup(requestWith(a.id)), null);
    assert.equal(store.size, 1);
  } finally {
    await store.closeAll();
  }
});

test('a session unused for the idle time is gone; one in use stays', async () => {
  const store = new SessionStore(300, 10);
  try {
    const idle = store.create('idle', newAdmin(), {});
    const used = store.create('used', newAdmin(), {});
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      assert.ok(store.lookup(requestWith(used.id)));
    }
    assert.equal(store.lookup(requestWith(idle.id)), null);
    assert.equal(store.lookup(requestWith(used.id))?.username, 'used');
  } finally {
    await store.closeAll();
  }
});

test('the session cookie: only a well-formed id is read; it is HttpOnly and SameSite=Strict', () => {
  assert.equal(sessionCookie(undefined), null);
  assert.equal(sessionCookie(''), null);
  assert.equal(sessionCookie(`${SESSION_COOKIE}=`), null);
  assert.equal(sessionCookie(`${SESSION_COOKIE}=a;b`), 'a');
  assert.equal(sessionCookie(`${SESSION_COOKIE}=<script>`), null);
  assert.equal(sessionCookie(`${SESSION_COOKIE}=${'x'.repeat(65)}`), null);
  assert.equal(sessionCookie(`x${SESSION_COOKIE}=abc`), null);
  assert.equal(sessionCookie(`a=1; ${SESSION_COOKIE}=abc_-9`), 'abc_-9');
  const set = setSessionCookie('abc', 30 * 60_000);
  assert.match(set, /HttpOnly/);
  assert.match(set, /SameSite=Strict/);
  assert.match(set, /Max-Age=1800/);
});
