import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { localPath, tokensFrom } from './authcode.ts';
import { isNavigation } from './replies.ts';
import { makeCtx } from '../../../../../test/helpers/plugin-ctx.ts';

describe('authcode helpers', () => {
  it('keeps post-login redirects on this origin', () => {
    assert.equal(localPath('/app/page'), '/app/page');
    assert.equal(localPath('//evil.example/x'), '/evil.example/x');
    assert.equal(localPath('/\\evil.example'), '/evil.example');
  });

  it('never lets expires_in <= 0 make a token live forever', () => {
    const now = 1_700_000_000_000;
    assert.equal(tokensFrom({ access_token: 'a', token_type: 'bearer', expires_in: 0 }, now).expires_at, 1_700_000_000);
    assert.equal(tokensFrom({ access_token: 'a', token_type: 'bearer', expires_in: -5 }, now).expires_at, 1_700_000_000);
    assert.equal(tokensFrom({ access_token: 'a', token_type: 'bearer', expires_in: 60 }, now).expires_at, 1_700_000_060);
    assert.equal(tokensFrom({ access_token: 'a', token_type: 'bearer' }, now).expires_at, undefined);
  });

  it('tells navigations from script requests', () => {
    assert.equal(isNavigation(makeCtx({ headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } })), true);
    assert.equal(isNavigation(makeCtx({ headers: {} })), true, 'old browsers and curl without hints');
    assert.equal(isNavigation(makeCtx({ headers: { accept: 'application/json' } })), false);
    assert.equal(isNavigation(makeCtx({ headers: { 'sec-fetch-mode': 'cors', accept: 'text/html' } })), false);
    assert.equal(isNavigation(makeCtx({ headers: { 'x-requested-with': 'XMLHttpRequest' } })), false);
  });
});
