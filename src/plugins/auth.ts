/**
 * What Kong's credential plugins (key-auth, basic-auth, jwt, oauth2) share: the identity headers
 * they write upstream, the `anonymous` consumer, and the logical AND / OR between several auth
 * plugins on one route (Kong's `/how-to/allow-multiple-authentication/`):
 *
 * - without `anonymous` (AND), a plugin that cannot authenticate the request ends it with its own
 *   error; the plugins run by priority, so the highest-priority failure is what the client sees;
 * - with `anonymous` (OR), a plugin does nothing when an earlier one already attached a
 *   credential; otherwise it tries, and on failure attaches the anonymous consumer (without a
 *   credential) instead of refusing. A configured anonymous consumer that does not exist → 500.
 *
 * Client-sent copies of every identity header are removed whenever a plugin sets the identity,
 * so the upstream can trust them.
 */
import type { Consumer } from '../config/types.ts';
import type { Credential, MaybeReply, Reply, RequestContext } from './sdk.ts';
import { utf8HeaderValue } from './header-value.ts';

/** Kong's identity headers (kong/constants.lua HEADERS), lower-case. */
export const IDENTITY_HEADERS = {
  consumerId: 'x-consumer-id',
  consumerCustomId: 'x-consumer-custom-id',
  consumerUsername: 'x-consumer-username',
  credentialIdentifier: 'x-credential-identifier',
  anonymous: 'x-anonymous-consumer',
  consumerGroups: 'x-consumer-groups',
} as const;

const identityNames: readonly string[] = Object.values(IDENTITY_HEADERS);

/** A failed attempt: the reply the plugin gives when it is not in an OR with `anonymous`. */
export interface AuthFailure {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

/** `null`: authenticated (the plugin called `setIdentity`); otherwise why not. */
export type AttemptResult = AuthFailure | null;

/**
 * Attach a consumer and credential to the request (`kong.client.authenticate`) and write Kong's
 * identity headers: X-Consumer-ID/-Custom-ID/-Username, X-Credential-Identifier (the value each
 * plugin documents), X-Anonymous-Consumer (only without a credential), X-Consumer-Groups (the
 * consumer's consumer-group names). Unset values are removed, never left as the client sent them.
 */
export function setIdentity(ctx: RequestContext, consumer: Consumer | null, credential: Credential | null): void {
  ctx.authenticate({ consumer, credential });
  const up = ctx.upstream;
  up.removeLowerHeaders(identityNames);
  if (consumer !== null) {
    up.setHeader(IDENTITY_HEADERS.consumerId, consumer.id);
    if (consumer.custom_id !== null) up.setHeader(IDENTITY_HEADERS.consumerCustomId, utf8HeaderValue(consumer.custom_id));
    if (consumer.username !== null) up.setHeader(IDENTITY_HEADERS.consumerUsername, utf8HeaderValue(consumer.username));
    const groups = ctx.consumerGroups;
    if (groups.length > 0) up.setHeader(IDENTITY_HEADERS.consumerGroups, utf8HeaderValue(groups.map((g) => g.name).join(', ')));
  }
  if (credential !== null) {
    if (credential.identifier) up.setHeader(IDENTITY_HEADERS.credentialIdentifier, utf8HeaderValue(credential.identifier));
  } else {
    up.setHeader(IDENTITY_HEADERS.anonymous, 'true');
  }
}

/** The consumer a credential belongs to; null when it was deleted (the credential never authenticates). */
export function ownerOf(ctx: RequestContext, credential: { consumer: { id: string } }): Consumer | null {
  return ctx.entities.consumerById(credential.consumer.id);
}

/** Kong's `anonymous` lookup: a consumer id, else a username. */
export function findAnonymous(ctx: RequestContext, anonymous: string): Consumer | null {
  return ctx.entities.consumerById(anonymous) ?? ctx.entities.consumerByUsername(anonymous);
}

function attachAnonymous(ctx: RequestContext, anonymous: string, plugin: string): Reply | undefined {
  const consumer = findAnonymous(ctx, anonymous);
  if (consumer === null) {
    const message = `anonymous consumer ${anonymous} is configured but doesn't exist`;
    ctx.log.error({ plugin }, message);
    return ctx.reply(500, { message });
  }
  setIdentity(ctx, consumer, null);
  return undefined;
}

function failureReply(ctx: RequestContext, f: AuthFailure): Reply {
  return ctx.reply(f.status, f.body, f.headers);
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

export interface AuthSettings {
  readonly anonymous: string | null;
  readonly run_on_preflight?: boolean;
}

/**
 * The access handler of a credential plugin around its `attempt`: pre-flight skipping
 * (`run_on_preflight`), then Kong's logical AND (no `anonymous`) or OR (`anonymous` set).
 * Stays synchronous when `attempt` is.
 */
export function authAccess(conf: AuthSettings, plugin: string, attempt: (ctx: RequestContext) => AttemptResult | Promise<AttemptResult>): (ctx: RequestContext) => MaybeReply {
  const anonymous = conf.anonymous;
  const skipPreflight = conf.run_on_preflight === false;
  return (ctx) => {
    if (skipPreflight && ctx.request.method === 'OPTIONS') return;
    if (anonymous !== null) {
      // OR: an earlier auth plugin already attached a credential.
      if (ctx.credential !== null) return;
      const r = attempt(ctx);
      if (isPromise(r)) return r.then((f) => (f === null ? undefined : attachAnonymous(ctx, anonymous, plugin)));
      return r === null ? undefined : attachAnonymous(ctx, anonymous, plugin);
    }
    const r = attempt(ctx);
    if (isPromise(r)) return r.then((f) => (f === null ? undefined : failureReply(ctx, f)));
    return r === null ? undefined : failureReply(ctx, r);
  };
}
