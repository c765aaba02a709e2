/**
 * A deliberately small type surface for oidc-provider 9, which ships no TypeScript types.
 * Only what demo/idp.ts and its tests touch is described; the rest is left loose on purpose
 * (the demo IdP is test tooling, not gateway code).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type ClientMetadata = Record<string, unknown> & { client_id: string };

  /** The Koa-style context oidc-provider hands to its hooks. Kept loose on purpose. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type KoaContextWithOIDC = any;

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, any> };
    params: Record<string, any>;
    session?: { accountId: string; uid: string; cookie: string };
    grantId?: string;
    lastSubmission?: Record<string, unknown>;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(middleware: (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void): void;
    on(event: string, listener: (...args: any[]) => void): this;
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>,
      params?: string | string[] | Set<string>,
      allowedDuplicateParameters?: string | string[] | Set<string>,
    ): void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    readonly Client: any;
    readonly Grant: any;
    readonly AccessToken: any;
    readonly RefreshToken: any;
    readonly IdToken: any;
    readonly Session: any;
    readonly ResourceServer: any;
    readonly ClientCredentials: any;
  }

  export const errors: {
    InvalidGrant: new (description?: string) => Error;
    InvalidScope: new (description: string, scope?: string) => Error;
    InvalidTarget: new (description?: string) => Error;
    InvalidToken: new (description?: string) => Error;
    InvalidRequest: new (description?: string) => Error;
  } & Record<string, any>;
}
