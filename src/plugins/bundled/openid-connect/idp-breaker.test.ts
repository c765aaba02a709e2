import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAILURES_TO_OPEN, IdpBreaker, OPEN_MS } from './idp-breaker.ts';

const E = 'https://idp.test/token';

function breakerAt(): { breaker: IdpBreaker; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  return { breaker: new IdpBreaker(() => clock.t), clock };
}

function fail(b: IdpBreaker, times: number): void {
  for (let i = 0; i < times; i++) {
    assert.ok(b.admit(E));
    b.settle(E, 'failure');
  }
}

test('IdpBreaker: opens after consecutive failures, fails fast for the back-off, then lets one probe through', () => {
  const { breaker, clock } = breakerAt();
  fail(breaker, FAILURES_TO_OPEN - 1);
  assert.equal(breaker.isOpen(E), false);
  fail(breaker, 1);
  assert.equal(breaker.isOpen(E), true);
  assert.equal(breaker.admit(E), false);
  clock.t += OPEN_MS - 1;
  assert.equal(breaker.admit(E), false);
  clock.t += 1;
  assert.equal(breaker.admit(E), true, 'the probe');
  assert.equal(breaker.admit(E), false, 'only one probe at a time');
  breaker.settle(E, 'success');
  assert.equal(breaker.isOpen(E), false);
  assert.equal(breaker.admit(E), true);
});

test('IdpBreaker: a failed probe opens the circuit again; an aborted one frees the probe slot', () => {
  const { breaker, clock } = breakerAt();
  fail(breaker, FAILURES_TO_OPEN);
  clock.t += OPEN_MS;
  assert.equal(breaker.admit(E), true);
  breaker.settle(E, 'failure');
  assert.equal(breaker.admit(E), false);
  clock.t += OPEN_MS;
  assert.equal(breaker.admit(E), true);
  breaker.settle(E, 'aborted');
  assert.equal(breaker.admit(E), true, 'the aborted probe said nothing: another may probe');
});

test('IdpBreaker: a success resets the count; endpoints are independent; the query is not part of the key', () => {
  const { breaker } = breakerAt();
  fail(breaker, FAILURES_TO_OPEN - 1);
  assert.ok(breaker.admit(E));
  breaker.settle(E, 'success');
  fail(breaker, FAILURES_TO_OPEN - 1);
  assert.equal(breaker.isOpen(E), false);
  fail(breaker, 1);
  assert.equal(breaker.isOpen(E), true);
  assert.equal(breaker.admit('https://idp.test/introspect'), true);
  assert.equal(IdpBreaker.endpointOf('https://idp.test/jwks?x=1#y'), 'https://idp.test/jwks');
});
