/**
 * The options of every token endpoint request the plugin makes, whichever grant it runs: the
 * bearer-side grants (grants.ts: `password`, `client_credentials`, `refresh_token`) and the browser
 * flows (the code exchange at the callback, the refresh of a session's tokens; browser-slots.ts
 * hands these to ./browser). One place builds them:
 *
 * - `token_post_args_names`/`_values`: fixed extra form arguments; `token_post_args_client`: form
 *   arguments copied from the client's request (query string, then body, then a request header);
 * - `token_headers_names`/`_values`: fixed extra request headers; `token_headers_client`: request
 *   headers copied from the client's request;
 * - `token_headers_replay` (+ `token_headers_prefix`): token endpoint response headers handed to
 *   the client's response, for the grants in `token_headers_grants` (every grant when unset).
 */
import type { IncomingView } from '../../../sdk.ts';
import type { OidcConfig } from '../schema.ts';
import type { CallExtras } from '../http.ts';
import type { BodyFields } from '../body-fields.ts';
import type { HeaderWrite } from '../runtime.ts';
import { extraPairs } from './verify-token.ts';

/** The grants whose token requests take these options (`token_headers_grants` names them). */
export type TokenGrant = 'authorization_code' | 'refresh_token' | 'password' | 'client_credentials';

type TokenOptions = Pick<
  OidcConfig,
  'token_post_args_names' | 'token_post_args_values' | 'token_post_args_client' | 'token_headers_names' | 'token_headers_values' | 'token_headers_client' | 'token_headers_replay' | 'token_headers_prefix' | 'token_headers_grants'
>;

/**
 * Extra form arguments of a token request: `token_post_args_names`/`_values`, then the
 * `token_post_args_client` ones the client's request carries (query, body, header; first found).
 * The body is read only when an argument is not in the query.
 */
export async function tokenPostArgs(cfg: TokenOptions, request: IncomingView, body: BodyFields): Promise<Record<string, string>> {
  const params = extraPairs(cfg.token_post_args_names, cfg.token_post_args_values);
  for (const n of cfg.token_post_args_client ?? []) {
    const v = request.query.get(n) ?? (await body.get(n)) ?? request.header(n);
    if (v !== null && v !== undefined) params[n] = v;
  }
  return params;
}

/** Extra headers of a token request: `token_headers_names`/`_values`, then the `token_headers_client` ones the client sent. */
export function tokenRequestHeaders(cfg: TokenOptions, request: IncomingView): Record<string, string> {
  const headers = extraPairs(cfg.token_headers_names, cfg.token_headers_values);
  for (const n of cfg.token_headers_client ?? []) {
    const v = request.header(n);
    if (v !== undefined) headers[n] = v;
  }
  return headers;
}

/**
 * `token_headers_replay`: the response hook of a token call that copies the named response
 * headers (with `token_headers_prefix`) into `into`, when `token_headers_grants` lists the grant
 * (unset: every grant); null when nothing is to be replayed for it.
 */
export function replayHook(cfg: TokenOptions, grant: TokenGrant, into: HeaderWrite[]): CallExtras['onResponse'] {
  const names = cfg.token_headers_replay ?? [];
  if (names.length === 0) return null;
  const grants = cfg.token_headers_grants;
  if (grants && !grants.includes(grant)) return null;
  const prefix = cfg.token_headers_prefix ?? '';
  return async (res) => {
    for (const n of names) {
      const v = res.headers.get(n);
      if (v !== null) into.push({ name: prefix + n, value: v });
    }
    return res;
  };
}
