/**
 * The gateway's single error type. Every foreign error is wrapped into a GatewayError at the
 * boundary where it enters (IdP call, upstream call, store call), keeping the original as `cause`.
 *
 * What the client sees (`status`, and `message` only when `expose` is true) is kept apart from
 * what the log records (`detail`, `cause`). Never put tokens or secrets into either.
 */
export const errorCodes = [
  'GW_INTERNAL',
  'GW_ROUTE_NOT_FOUND',
  'GW_BAD_REQUEST',
  'GW_REQUEST_TOO_LARGE',
  'GW_REQUEST_TIMEOUT',
  'GW_HEADERS_TOO_LARGE',
  'GW_UPSTREAM_UNAVAILABLE',
  'GW_UPSTREAM_TIMEOUT',
  'GW_UPSTREAM_TLS',
  'GW_PLUGIN_FAILED',
  'GW_CONFIG_INVALID',
  'GW_STORE_UNAVAILABLE',
  'GW_STORE_CONFLICT',
  'GW_AUTH_UNAUTHORIZED',
  'GW_AUTH_FORBIDDEN',
  'GW_AUTH_IDP_UNAVAILABLE',
  'GW_AUTH_IDP_ERROR',
  'GW_AUTH_BAD_TOKEN',
  'GW_AUTH_BAD_SESSION',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export interface GatewayErrorOptions {
  /** HTTP status the client gets. Defaults to 500. */
  status?: number;
  /** When true, `message` may be shown to the client. Defaults to status < 500. */
  expose?: boolean;
  /** Private detail for the log only. Never secrets. */
  detail?: string;
  /** Extra response headers (e.g. WWW-Authenticate). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? this.status < 500;
    this.detail = options.detail;
    this.headers = options.headers;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** One problem found while validating a config or an Admin API body. */
export interface ValidationIssue {
  /** Path in the document, e.g. `services[0].routes[1].paths[0]` or `config.issuer`. */
  path: string;
  message: string;
}

/** A config (file, Admin API body, plugin config) that failed validation: carries every issue found. */
export class ConfigError extends GatewayError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], message = 'invalid configuration') {
    super('GW_CONFIG_INVALID', message, { status: 400, expose: true });
    this.name = 'ConfigError';
    this.issues = issues;
  }

  /** Human-readable, one issue per line: `path: message`. */
  format(): string {
    return this.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
  }
}
