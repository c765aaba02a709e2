import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remainingSeconds, sessionHeaderName, sessionHeaders } from './session-headers.ts';
import type { SessionData } from './session.ts';

const t0 = 1_700_000_000_000;
const session: SessionData = {
  id: 'sid-1', method: 'password', clientIndex: 0, subject: 'alex', issuer: 'http://idp', idpSessionId: null,
  tokens: {}, claims: {}, createdAt: t0, renewedAt: t0, lastSeenAt: t0, audience: 'default',
};
const timeouts = { idlingTimeout: 900, rollingTimeout: 3600, absoluteTimeout: 86400 };

test('header names follow lua-resty-session', () => {
  assert.equal(sessionHeaderName('id'), 'Session-Id');
  assert.equal(sessionHeaderName('idling-timeout'), 'Session-Idling-Timeout');
  assert.equal(sessionHeaderName('absolute-timeout'), 'Session-Absolute-Timeout');
});

test('timeout is the time left before the first timeout ends the session', () => {
  assert.equal(remainingSeconds(session, timeouts, t0 + 100_000), 800);
  assert.equal(remainingSeconds({ ...session, lastSeenAt: t0 + 3_000_000 }, timeouts, t0 + 3_000_000), 600);
  assert.equal(remainingSeconds(session, { idlingTimeout: 0, rollingTimeout: 0, absoluteTimeout: 0 }, t0), null);
  assert.equal(remainingSeconds(session, timeouts, t0 + 10_000_000), 0);
});

test('sessionHeaders: each *-timeout is the time left of it; facts without a value are skipped', () => {
  const at = t0 + 100_000;
  const h = sessionHeaders(['id', 'timeout', 'audience', 'subject', 'idling-timeout', 'rolling-timeout', 'absolute-timeout'], { ...session, subject: null }, timeouts, at);
  assert.deepEqual(h, [
    { name: 'Session-Id', value: 'sid-1' },
    { name: 'Session-Timeout', value: '800' },
    { name: 'Session-Audience', value: 'default' },
    { name: 'Session-Idling-Timeout', value: '800' },
    { name: 'Session-Rolling-Timeout', value: '3500' },
    { name: 'Session-Absolute-Timeout', value: '86300' },
  ]);
  const noIdle = sessionHeaders(['idling-timeout', 'timeout'], session, { ...timeouts, idlingTimeout: 0 }, at);
  assert.deepEqual(noIdle, [{ name: 'Session-Timeout', value: '3500' }]);
});
