/**
 * The plugin's `access` phase as one step table (in the spirit of node-oidc-provider's
 * `lib/actions/authorization/index.js`: every step of the flow in one list, in order):
 *
 *   back-channel logout → callback → session → logout → client → credential search (Kong's
 *   order, `methodSteps`) → proof of possession (DPoP) → max_age → user info search → claims
 *   authorization → consumer mapping → hide credentials → headers → session save
 *
 * Each step returns its answer directly, or a Promise when it needs I/O (the IdP, the body, a
 * store). `runSteps` stays synchronous until a step returns a Promise (as the kernel's phase
 * runner does), so a cached bearer token and a remembered session are answered without
 * allocating one. A step ends the request with a Reply, or returns undefined to go on; a thrown
 * error (or a rejected Promise) becomes the plugin's error reply (`fail`).
 *
 * Each step memoizes what depends only on the token or session where the step is: the bearer
 * Outcome on the verified-token cache entry (steps/verify-token.ts), the session Outcome per
 * opened session (browser-slots.ts), claims authorization, consumer mapping (per entity
 * snapshot) and the header values per Outcome (below).
 */
import type { Consumer } from '../../../config/types.ts';
import type { Credential, EntityLookup, Reply, RequestContext } from '../../sdk.ts';
import type { AuthMethod, OidcConfig } from './schema.ts';
import { BodyFields } from './body-fields.ts';
import { configuredClients, selectClient, type OidcClient } from './clients.ts';
import { authError, describe } from './errors.ts';
import { STATE_KEY, type FoundToken, type HeaderWrite, type OidcRequestState, type Outcome, type RequestState, type Runtime, type Sync } from './runtime.ts';
import type { BrowserFlows, SessionData } from './browser/index.ts';
import { authorizationCodeStep, saveSessionAfter, sessionStep } from './browser-slots.ts';
import { findBearerToken } from './steps/find-credential.ts';
import { authorizeClaims, mapConsumer, maxAgeProblem } from './steps/authorize.ts';
import { bearerStep, introspectionStep, searchUserInfo, userinfoStep } from './steps/verify-token.ts';
import { clientCredentialsStep, passwordStep, refreshTokenStep } from './steps/grants.ts';
import { kongOAuth2Step } from './steps/kong-oauth2.ts';
import { appliesLoginAction, loginActionReply } from './steps/login-action.ts';
import { tokenExchangeBearerStep } from './steps/token-exchange.ts';
import { withRequestIdToken } from './steps/id-token.ts';
import { withDistributedClaims } from './steps/distributed-claims.ts';
import { assertParameters } from './steps/verify-parameters.ts';
import { dpopStep } from './steps/dpop.ts';
import type { ConsumerGroup } from '../../../config/credentials.ts';
import { consumerHeaders, flat, headersFromPlan, hideCredentials, type HeaderPlan } from './steps/headers.ts';

/**
 * A credential method's answer: an Outcome (authenticated), a reply that ends the request (the
 * browser flows' redirect to the IdP), or null (no credential of this kind: try the next one).
 */
type StepResult = Outcome | { reply: Reply } | null;
type MethodStep = (rt: Runtime, rs: RequestState) => Sync<StepResult>;

/**
 * Credential search in Kong's hard-coded order (session → bearer → kong_oauth2 → introspection
 * → userinfo → refresh_token → password → client_credentials → authorization_code). Only methods
 * in `auth_methods` take part; the first that finds a credential decides: it returns an Outcome
 * or throws (401/403/500). `kong_oauth2` reads the oauth2 plugin's tokens (steps/kong-oauth2.ts).
 * `session` and `authorization_code` need the browser flows.
 */
const methodSteps: ReadonlyArray<{ method: AuthMethod; step: MethodStep | null }> = [
  { method: 'session', step: sessionStep },
  { method: 'bearer', step: bearerStep },
  { method: 'kong_oauth2', step: kongOAuth2Step },
  { method: 'introspection', step: introspectionStep },
  { method: 'userinfo', step: userinfoStep },
  { method: 'refresh_token', step: refreshTokenStep },
  { method: 'password', step: passwordStep },
  { method: 'client_credentials', step: clientCredentialsStep },
  { method: 'authorization_code', step: authorizationCodeStep },
];

/** What one plugin instance gives its steps (built once by `create()`). */
export interface Instance {
  readonly rt: Runtime;
  readonly cfg: OidcConfig;
  /** The browser flows: present when `session` or `authorization_code` is enabled. */
  readonly browser: BrowserFlows | null;
  readonly clients: readonly OidcClient[];
  /** The enabled credential methods, in `methodSteps` order. */
  readonly methods: readonly MethodStep[];
  readonly upstreamPlan: HeaderPlan;
  readonly downstreamPlan: HeaderPlan;
  /** Client-sent copies of every header the plugin may write upstream, removed first (lower-case). */
  readonly removeFirst: readonly string[];
  /** Consumer headers a token header may also set: removed again before the consumer's are set. */
  readonly removeAgain: readonly string[];
  /** Session facts (`session_response_headers`, the session id) make the downstream headers per request. */
  readonly perRequestDownstream: boolean;
  /** Failures the requests went on after (logged with the running count). */
  readonly counters: { sessionSaveFailures: number };
  /** `proof_of_possession_mtls` (steps/mtls-pop.ts), null when off. */
  readonly mtlsPop?: ((ctx: RequestContext, o: Outcome, sessionMethod: string | null) => Sync<void>) | null;
}

/** The per-request record that flows through the steps. */
export class Flow implements RequestState {
  readonly ctx: RequestContext;
  readonly inst: Instance;
  readonly nowMs: number;
  client: OidcClient | null = null;
  /** The session of this request: loaded, made by the callback, or saved after another method. */
  session: SessionData | null = null;
  callback = false;
  outcome: Outcome | null = null;
  /** The consumer mapping of `outcome` (consumer, credential, groups and their headers). */
  identity: Identity | null = null;
  /** What is derived once from `outcome` (`derivedOf`). */
  derived: Derived | null = null;
  bearerHandled = false;
  // (Plain fields, not #private ones: this object is made on every request.)
  foundBearer: Sync<FoundToken | null> | undefined = undefined;
  bodyFields: BodyFields | null = null;

  constructor(inst: Instance, ctx: RequestContext) {
    this.inst = inst;
    this.ctx = ctx;
    this.nowMs = ctx.startedAt;
    // One client (or none) is every request's: the `client` step runs only to choose among several.
    this.client = inst.clients.length === 1 ? inst.clients[0] : null;
  }

  get body(): BodyFields {
    return (this.bodyFields ??= new BodyFields(this.ctx.request));
  }

  bearer(): Sync<FoundToken | null> {
    return (this.foundBearer ??= findBearerToken(this.inst.rt, this.ctx.request, this));
  }
}

/** One step of `access`: a Reply ends the request, undefined goes on to the next step. */
type AccessStep = (inst: Instance, f: Flow) => Sync<Reply | undefined>;

/** Reply-or-null of the browser flows, as a step answer. */
function replyOrNext(r: Reply | null | Promise<Reply | null>): Sync<Reply | undefined> {
  if (r instanceof Promise) return r.then((v) => v ?? undefined);
  return r ?? undefined;
}

const backchannelLogout: AccessStep = (inst, f) => replyOrNext(inst.browser!.backchannelLogout(f.ctx));

// The callback of a sign-in pending in this browser starts a new session; an old one is not
// consulted. A stale callback URL (reloaded, bookmarked) is served by a valid session.
const callback: AccessStep = (inst, f) => {
  const c = inst.browser!.isCallback(f.ctx);
  if (c instanceof Promise) {
    return c.then((v) => {
      f.callback = v;
      return undefined;
    });
  }
  f.callback = c;
  return undefined;
};

const session: AccessStep = (inst, f) => {
  if (f.callback) return undefined;
  const s = inst.browser!.loadSession(f.ctx, f.nowMs);
  if (s instanceof Promise) {
    return s.then((v) => {
      f.session = v;
      return undefined;
    });
  }
  f.session = s;
  return undefined;
};

const logout: AccessStep = (inst, f) => replyOrNext(inst.browser!.logout(f.ctx, f.session));

const client: AccessStep = (inst, f) => {
  const c = selectClient(inst.cfg, inst.clients, f.ctx.request);
  if (c instanceof Promise) {
    return c.then((v) => {
      f.client = v;
      return undefined;
    });
  }
  f.client = c;
  return undefined;
};

/** The enabled methods from `from` on, synchronously until one answers with a Promise. */
function searchFrom(inst: Instance, f: Flow, from: number): Sync<StepResult> {
  const methods = inst.methods;
  for (let i = from; i < methods.length; i++) {
    const r = methods[i](inst.rt, f);
    if (r instanceof Promise) return r.then((v) => (v !== null ? v : searchFrom(inst, f, i + 1)));
    if (r !== null) return r;
  }
  return null;
}

function found(inst: Instance, f: Flow, r: StepResult): Sync<Reply | undefined> {
  if (r !== null) {
    if (!('method' in r)) return r.reply;
    f.outcome = r;
    return undefined;
  }
  // A token no enabled method could take (e.g. opaque with only `bearer`) is invalid, not absent.
  const token = f.bearer();
  if (token instanceof Promise) return token.then((t) => noCredential(inst, t));
  return noCredential(inst, token);
}

function noCredential(inst: Instance, token: FoundToken | null): never {
  if (token !== null) throw authError('invalid_token', 'token not accepted by any enabled method');
  inst.rt.http.metrics?.authFailure('missing');
  throw authError('no_credentials', 'no credentials found');
}

const credentialSearch: AccessStep = (inst, f) => {
  const r = searchFrom(inst, f, 0);
  return r instanceof Promise ? r.then((v) => found(inst, f, v)) : found(inst, f, r);
};

// RFC 8705 §3: a certificate-bound token only with its certificate (steps/mtls-pop.ts).
// Synchronous unless a header certificate's revocation status has to be fetched.
const mtlsProof: AccessStep = (inst, f) => {
  const r = inst.mtlsPop!(f.ctx, f.outcome!, f.session?.method ?? null);
  return r instanceof Promise ? r.then(() => undefined) : undefined;
};

// `verify_parameters`: the configuration against the discovery document (once per document).
// Synchronous once the document is in memory (the credential search refreshes it as needed).
const verifyParameters: AccessStep = (inst) => {
  const known = inst.rt.issuer.peekMetadata();
  if (known !== null) {
    assertParameters(inst.cfg, known);
    return undefined;
  }
  return inst.rt.issuer.metadata().then((meta) => {
    assertParameters(inst.cfg, meta);
    return undefined;
  });
};

// `id_token_param_name`: the ID token the client sends with its request joins the Outcome.
const requestIdToken: AccessStep = async (inst, f) => {
  f.outcome = await withRequestIdToken(inst.rt, f, f.outcome!);
  return undefined;
};

// RFC 9449: a DPoP-bound token only with a valid proof of its key (steps/dpop.ts).
const proofOfPossessionDpop: AccessStep = (inst, f) => dpopStep(inst.rt, f, f.outcome!);

const maxAge: AccessStep = (inst, f) => {
  const problem = maxAgeProblem(inst.cfg, f.outcome!, f.ctx.now());
  if (problem !== null) throw authError('invalid_token', problem);
  return undefined;
};

const userInfoSearch: AccessStep = async (inst, f) => {
  const o = f.outcome!;
  if (!o.userinfo) {
    const info = await searchUserInfo(inst.rt, f, o);
    f.outcome = { ...o, userinfo: info?.claims ?? null, userinfoJwt: info?.jwt ?? null };
  }
  return undefined;
};

// `resolve_distributed_claims`: claims other providers hold join the Outcome (once per Outcome).
const distributedClaims: AccessStep = (inst, f) => withDistributedClaims(inst.rt, f, f.outcome!).then((o) => {
  f.outcome = o;
  return undefined;
});

/** Consumer mapping of an Outcome against one snapshot's entities. */
interface Identity {
  readonly entities: EntityLookup;
  readonly who: { consumer: Consumer | null; credential: Credential | null; groups: readonly string[] | null; consumerGroups: readonly ConsumerGroup[] | null };
  readonly headers: readonly HeaderWrite[];
}

/** The header values derived once from an Outcome. */
interface HeaderValues {
  /** Upstream token and claim headers, names lower-case, values flat strings. */
  readonly upstream: readonly HeaderWrite[];
  /** `hide_credentials` has something left to remove (a header among the first removals has not). */
  readonly hide: boolean;
  /** The request state, shared by the requests of this Outcome when nothing per request is added. */
  readonly state: OidcRequestState;
}

/**
 * What the steps after the credential search derive once from an Outcome, shared by every
 * request of its token or session (one lookup per request): claims authorization met, consumer
 * mapping (for the last snapshot seen), header values.
 */
interface Derived {
  authorized: boolean;
  identity: Identity | null;
  values: HeaderValues | null;
}
const derived = new WeakMap<Outcome, Derived>();

function derivedOf(f: Flow): Derived {
  if (f.derived !== null) return f.derived;
  const o = f.outcome!;
  let d = derived.get(o);
  if (d === undefined) {
    d = { authorized: false, identity: null, values: null };
    derived.set(o, d);
  }
  return (f.derived = d);
}

const claimsAuthorization: AccessStep = (inst, f) => {
  const d = derivedOf(f);
  if (d.authorized) return undefined;
  const o = f.outcome!;
  // Throws (403) when not met: nothing is remembered then, and the next request throws again.
  authorizeClaims(inst.cfg, o.introspection ?? o.accessClaims);
  d.authorized = true;
  return undefined;
};

const consumerMapping: AccessStep = (inst, f) => {
  const d = derivedOf(f);
  const entities = f.ctx.entities;
  let id = d.identity;
  if (id === null || id.entities !== entities) {
    const o = f.outcome!;
    const mapped = o.identity ?? mapConsumer(inst.cfg, [o.accessClaims, o.idClaims, o.introspection, o.userinfo], entities);
    // Shared by every request of this token or session: frozen, so no one can change it for the others.
    if (mapped.credential?.consumer) Object.freeze(mapped.credential.consumer);
    const credential = mapped.credential && Object.freeze(mapped.credential);
    const groups = mapped.groups && Object.freeze(mapped.groups);
    const consumerGroups = mapped.consumerGroups && Object.freeze(mapped.consumerGroups);
    id = { entities, who: { consumer: mapped.consumer, credential, groups, consumerGroups }, headers: consumerHeaders(mapped.consumer, groups, credential) };
    d.identity = id;
  }
  f.ctx.authenticate(id.who);
  // This request's own (another snapshot's request may replace the memo while this one waits).
  f.identity = id;
  return undefined;
};

function valuesOf(inst: Instance, f: Flow): HeaderValues {
  const d = derivedOf(f);
  if (d.values !== null) return d.values;
  const o = f.outcome!;
  const downstream = Object.freeze(headersFromPlan(inst.downstreamPlan, o)) as HeaderWrite[];
  const state: OidcRequestState = Object.freeze({ method: o.method, accessToken: o.tokens.access_token ?? null, downstream });
  const hide = inst.cfg.hide_credentials && o.used.some((u) => u.location !== 'header' || !inst.removeFirst.includes(u.name));
  // Each value goes out on every request of this Outcome: one flat string each.
  const upstream = headersFromPlan(inst.upstreamPlan, o).map((h) => ({ name: h.name.toLowerCase(), value: flat(h.value) }));
  return (d.values = { upstream, hide, state });
}

// Client-sent copies of the headers we write are removed first (anti-spoofing); then the
// credential itself goes (`hide_credentials`), which may mean rewriting the body.
const hide: AccessStep = (inst, f) => {
  f.ctx.upstream.removeLowerHeaders(inst.removeFirst);
  const o = f.outcome!;
  if (!valuesOf(inst, f).hide) return undefined;
  const r = hideCredentials(f.ctx, o.used);
  return r instanceof Promise ? r.then(() => undefined) : undefined;
};

const headers: AccessStep = (inst, f) => {
  const up = f.ctx.upstream;
  const v = valuesOf(inst, f);
  // Session and authorization cookies are the gateway's own business: never sent upstream.
  inst.browser?.stripCookies(f.ctx);
  up.setLowerHeaders(v.upstream);
  if (inst.removeAgain.length > 0) up.removeLowerHeaders(inst.removeAgain);
  up.setLowerHeaders(f.identity!.headers);
  if (inst.browser === null) f.ctx.state.set(STATE_KEY, v.state);
  return undefined;
};

/**
 * After another method succeeded a session starts (browser flows); then the session's headers.
 * The request authenticated without it: when the new session cannot be stored (its store is
 * down), that is logged and counted and the request goes on without one (no Set-Cookie).
 */
const sessionSave: AccessStep = (inst, f) => {
  const saved = saveSessionAfter(inst.cfg, inst.browser!, f.ctx, f.outcome!, f.client?.index ?? 0);
  if (saved instanceof Promise) {
    return saved.then(
      (s) => {
        if (s !== null) f.session = s;
        return sessionHeaders(inst, f);
      },
      (err: unknown) => {
        inst.counters.sessionSaveFailures++;
        f.ctx.log.warn({ err: describe(err), failures: inst.counters.sessionSaveFailures }, 'openid-connect: the new session could not be stored; the request goes on without one');
        return sessionHeaders(inst, f);
      },
    );
  }
  return sessionHeaders(inst, f);
};

function sessionHeaders(inst: Instance, f: Flow): undefined {
  const { cfg, browser } = inst;
  const up = f.ctx.upstream;
  const s = f.session;
  let state = valuesOf(inst, f).state;
  if (s !== null) {
    // After the save: a renewal (Redis) gives the session a new id, and that is the one to tell.
    for (const h of browser!.sessionHeadersOf(s, cfg.session_request_headers ?? [])) up.setHeader(h.name, h.value);
    if (cfg.upstream_session_id_header) up.setHeader(cfg.upstream_session_id_header, s.id);
    if (inst.perRequestDownstream) {
      const downstream = [...state.downstream, ...browser!.sessionHeadersOf(s, cfg.session_response_headers ?? [])];
      if (cfg.downstream_session_id_header) downstream.push({ name: cfg.downstream_session_id_header, value: s.id });
      state = { ...state, downstream };
    }
  }
  f.ctx.state.set(STATE_KEY, state);
  return undefined;
}

/** `login_action` for `login_methods` other than the code flow: a reply ends the request here. */
const loginAction: AccessStep = (inst, f) => loginActionReply(inst.cfg, f.ctx, f.outcome!, f.client?.index ?? 0) ?? undefined;

/**
 * The step table: every step of `access`, in order, with the configurations it takes part in.
 * `accessSteps` keeps the ones a plugin instance needs.
 */
const stepTable: ReadonlyArray<{ name: string; step: AccessStep; when: (cfg: OidcConfig, browser: boolean) => boolean }> = [
  { name: 'back-channel logout', step: backchannelLogout, when: (_c, b) => b },
  { name: 'callback', step: callback, when: (c, b) => b && c.auth_methods.includes('authorization_code') },
  { name: 'session', step: session, when: (c, b) => b && c.auth_methods.includes('session') },
  { name: 'logout', step: logout, when: (_c, b) => b },
  { name: 'client', step: client, when: (c) => configuredClients(c).length > 1 },
  { name: 'verify parameters', step: verifyParameters, when: (c) => c.verify_parameters },
  { name: 'credential search', step: credentialSearch, when: () => true },
  { name: 'proof of possession (mTLS)', step: mtlsProof, when: (c) => c.proof_of_possession_mtls !== 'off' },
  { name: 'proof of possession (DPoP)', step: proofOfPossessionDpop, when: (c) => c.proof_of_possession_dpop !== 'off' },
  { name: 'request id token', step: requestIdToken, when: (c) => !!c.id_token_param_name },
  { name: 'max_age', step: maxAge, when: (c) => c.max_age !== null },
  { name: 'user info search', step: userInfoSearch, when: (c) => c.search_user_info },
  { name: 'distributed claims', step: distributedClaims, when: (c) => c.resolve_distributed_claims },
  { name: 'claims authorization', step: claimsAuthorization, when: () => true },
  { name: 'consumer mapping', step: consumerMapping, when: () => true },
  { name: 'hide credentials', step: hide, when: () => true },
  { name: 'headers', step: headers, when: () => true },
  { name: 'session save', step: sessionSave, when: (_c, b) => b },
  { name: 'login action', step: loginAction, when: (c) => appliesLoginAction(c) },
];

/** The steps of `stepTable` this configuration runs, in order. */
export function accessSteps(cfg: OidcConfig, browser: boolean): readonly AccessStep[] {
  return stepTable.filter((s) => s.when(cfg, browser)).map((s) => s.step);
}

/** The enabled credential methods, in Kong's order. */
export function enabledMethods(cfg: OidcConfig, browser: boolean): readonly MethodStep[] {
  const out: MethodStep[] = [];
  for (const { method, step } of methodSteps) {
    if (step === null || !cfg.auth_methods.includes(method)) continue;
    if ((method === 'session' || method === 'authorization_code') && !browser) continue;
    // token_exchange: bearer tokens of the listed issuers are exchanged first (steps/token-exchange.ts).
    out.push(method === 'bearer' && cfg.token_exchange ? tokenExchangeBearerStep : step);
  }
  return out;
}

/** How a failed request is answered (destroy the session, `anonymous`, the error reply). */
type Fail = (f: Flow, err: unknown) => Sync<Reply | undefined>;

/**
 * Run `steps` from `from` on: synchronously until a step returns a Promise, then in its
 * continuation. A thrown error or a rejected Promise goes to `fail`.
 */
export function runSteps(inst: Instance, steps: readonly AccessStep[], f: Flow, from: number, fail: Fail): Sync<Reply | undefined> {
  try {
    for (let i = from; i < steps.length; i++) {
      const r = steps[i](inst, f);
      if (r === undefined) continue;
      if (r instanceof Promise) {
        return r.then(
          (v) => (v !== undefined ? v : runSteps(inst, steps, f, i + 1, fail)),
          (err: unknown) => fail(f, err),
        );
      }
      return r;
    }
  } catch (err) {
    return fail(f, err);
  }
  return undefined;
}

/** Logs the failure and, with `*_destroy_session`, ends the session of the request. */
export function destroyOnFailure(inst: Instance, f: Flow, status: number): Promise<void> | undefined {
  const { cfg, browser } = inst;
  if (browser === null || f.session === null) return undefined;
  if (!((status === 401 && cfg.unauthorized_destroy_session) || (status === 403 && cfg.forbidden_destroy_session))) return undefined;
  return browser.destroySession(f.ctx, f.session).catch((e: unknown) => f.ctx.log.warn({ err: describe(e) }, 'openid-connect: could not destroy the session'));
}
