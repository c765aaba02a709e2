/**
 * The step table: which step runs for which credential kind, in Kong's hard-coded search order
 * (session → bearer → kong_oauth2 → introspection → userinfo → refresh_token → password →
 * client_credentials → authorization_code). Only methods in `auth_methods` take part; the first
 * step that finds a credential decides: it returns an Outcome or throws (401/403/500).
 *
 * `session` and `authorization_code` are slots filled by the browser flows when they are wired
 * (see create.ts); `kong_oauth2` reads the tokens of Kong's oauth2 plugin (steps/kong-oauth2.ts).
 */
import type { AuthMethod } from './schema.ts';
import type { Outcome, RequestState, Runtime } from './runtime.ts';
import { bearerStep, introspectionStep, userinfoStep } from './steps/verify-token.ts';
import { clientCredentialsStep, passwordStep, refreshTokenStep } from './steps/grants.ts';
import { kongOAuth2Step } from './steps/kong-oauth2.ts';

import type { Reply } from '../../sdk.ts';

/**
 * A step's answer: an Outcome (authenticated), a reply that ends the request (the browser flows'
 * redirect to the IdP), or null (no credential of this kind: try the next method).
 */
export type StepResult = Outcome | { reply: Reply } | null;
export type Step = (rt: Runtime, rs: RequestState) => Promise<StepResult>;

/** Steps provided from outside the core table (the browser flows). */
export interface BrowserSlots {
  session?: Step;
  authorization_code?: Step;
}

export const stepTable: ReadonlyArray<{ method: AuthMethod; step: Step | 'browser' | null }> = [
  { method: 'session', step: 'browser' },
  { method: 'bearer', step: bearerStep },
  { method: 'kong_oauth2', step: kongOAuth2Step },
  { method: 'introspection', step: introspectionStep },
  { method: 'userinfo', step: userinfoStep },
  { method: 'refresh_token', step: refreshTokenStep },
  { method: 'password', step: passwordStep },
  { method: 'client_credentials', step: clientCredentialsStep },
  { method: 'authorization_code', step: 'browser' },
];

/** Run the enabled steps in order; null when no credential was found at all. */
export async function authenticate(rt: Runtime, rs: RequestState, browser: BrowserSlots): Promise<StepResult> {
  for (const { method, step } of stepTable) {
    if (!rt.enabled.has(method)) continue;
    const run = step === 'browser' ? browser[method as keyof BrowserSlots] : step;
    if (!run) continue;
    const outcome = await run(rt, rs);
    if (outcome) return outcome;
  }
  return null;
}
