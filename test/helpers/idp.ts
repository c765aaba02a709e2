/**
 * Test-side door to the demo OpenID Provider (demo/idp.ts) and the misbehaving one
 * (./bad-idp.ts), so tests import their IdPs from one place.
 */
export { demoAudience, demoClients, demoUsers, endpointName, startIdp } from '../../demo/idp.ts';
export type { DemoIdp, StartIdpOptions } from '../../demo/idp.ts';
export { startBadIdp } from './bad-idp.ts';
export type { BadIdp, BadIdpOptions, SignOptions } from './bad-idp.ts';

import { after, before } from 'node:test';
import { startEcho, type EchoServer } from '../../demo/echo.ts';

/** An IdP (`start`) and the echo upstream, started before the file's tests and closed after. */
export function idpEchoSuite<I extends { close(): Promise<void> }>(start: () => Promise<I>): { readonly idp: I; readonly echo: EchoServer } {
  let idp: I | undefined;
  let echo: EchoServer | undefined;
  before(async () => {
    idp = await start();
    echo = await startEcho();
  });
  after(async () => {
    await echo?.close();
    await idp?.close();
  });
  return {
    get idp() { return idp!; },
    get echo() { return echo!; },
  };
}
