/**
 * Test-side door to the demo OpenID Provider (demo/idp.ts) and the misbehaving one
 * (./bad-idp.ts), so tests import their IdPs from one place.
 */
export { demoAudience, demoClients, demoUsers, endpointName, startIdp } from '../../demo/idp.ts';
export type { DemoIdp, StartIdpOptions } from '../../demo/idp.ts';
export { startBadIdp } from './bad-idp.ts';
export type { BadIdp, BadIdpOptions, SignOptions } from './bad-idp.ts';
