/**
 * `kong_oauth2`: a bearer token issued by Kong's `oauth2` plugin (plugins/oauth2-tokens.ts, in
 * the node's shared store). In the credential search order it comes after `bearer` (a JWT is
 * never a Kong token) and before `introspection`/`userinfo`: a token the store does not know is
 * left to them. A known token must be live (`now − created_at ≤ expires_in`, 0 = no expiry),
 * issued for this request's Service unless it was issued with global credentials, and its
 * credential and consumer must still exist — otherwise 401 `invalid_token`. The credential's
 * consumer becomes the request's consumer (X-Credential-Identifier = client_id). The token's
 * `scope` and `authenticated_userid` (as `sub`) are its claims, so `scopes_required` and the
 * other claim checks apply to it.
 */
import { OAuth2TokenStore, tokenLive, type OAuth2Token } from '../../../oauth2-tokens.ts';
import type { EntityLookup } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { Claims, FoundToken, Outcome, RequestState, Runtime, Sync } from '../runtime.ts';
import { authError } from '../errors.ts';

const stores = new WeakMap<KeyValueStore, OAuth2TokenStore>();

function storeOf(rt: Runtime): OAuth2TokenStore {
  let s = stores.get(rt.sharedKv);
  if (s === undefined) stores.set(rt.sharedKv, (s = new OAuth2TokenStore(rt.sharedKv, () => rt.now())));
  return s;
}

export function kongOAuth2Step(rt: Runtime, rs: RequestState): Sync<Outcome | null> {
  const found = rs.bearer();
  return found instanceof Promise ? found.then((f) => kongOAuth2Of(rt, rs, f)) : kongOAuth2Of(rt, rs, found);
}

/** The token from the process cache or a synchronous store read when it can, else from the store. */
function kongOAuth2Of(rt: Runtime, rs: RequestState, found: FoundToken | null): Sync<Outcome | null> {
  if (!found || rs.bearerHandled) return null;
  const store = storeOf(rt);
  const token = store.peek(found.token);
  if (token !== undefined) return outcomeOf(rt, rs, found, token);
  return store.byAccessToken(found.token).then((t) => outcomeOf(rt, rs, found, t));
}

/**
 * The Outcome of one stored token, remembered on the token object (the store's cache hands out
 * the same object while it is fresh) for the entity snapshot and credential location it was made
 * with; liveness and the service are checked on every request.
 */
const outcomes = new WeakMap<OAuth2Token, { entities: EntityLookup; location: string; name: string; outcome: Outcome }>();

function outcomeOf(rt: Runtime, rs: RequestState, found: FoundToken, token: OAuth2Token | null): Outcome | null {
  if (token === null) return null;
  rs.bearerHandled = true;
  if (!tokenLive(token, rt.now())) throw authError('invalid_token', 'kong oauth2 token expired');
  if (token.service !== null && token.service.id !== rs.ctx.service?.id) throw authError('invalid_token', 'kong oauth2 token issued for another service');
  const entities = rs.ctx.entities;
  const memo = outcomes.get(token);
  if (memo !== undefined && memo.entities === entities && memo.location === found.location && memo.name === found.name) return memo.outcome;
  const credential = entities.oauth2ById(token.credential.id);
  const consumer = credential !== null ? entities.consumerById(credential.consumer.id) : null;
  if (credential === null || consumer === null) throw authError('invalid_token', 'kong oauth2 token of a deleted credential');
  const claims: Claims = { client_id: credential.client_id };
  if (token.scope !== null) claims.scope = token.scope;
  if (token.authenticated_userid !== null) claims.sub = token.authenticated_userid;
  if (token.expires_in > 0) claims.exp = token.created_at + token.expires_in;
  claims.iat = token.created_at;
  const outcome: Outcome = {
    method: 'kong_oauth2',
    tokens: { access_token: found.token, token_type: 'bearer' },
    accessClaims: claims,
    idClaims: null,
    introspection: null,
    userinfo: null,
    used: [{ location: found.location, name: found.name }],
    identity: { consumer, credential: { id: credential.id, identifier: credential.client_id, consumer: { id: consumer.id } }, groups: null, consumerGroups: null },
  };
  outcomes.set(token, { entities, location: found.location, name: found.name, outcome });
  return outcome;
}
