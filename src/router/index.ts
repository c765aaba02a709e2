/**
 * The router: a pure module (no I/O) that turns routes into a matcher following Kong's
 * traditional router, and computes the upstream path. This file is the folder's only door.
 */
export { compileRouter } from './compile.ts';
export { upstreamPathFor } from './upstream-path.ts';
export { normalizePath } from './normalize.ts';
export { escapedSlashesModes, pathNeedsCheck, pathRefusals } from './path-safety.ts';
export type { EscapedSlashes, PathRefusal } from './path-safety.ts';
export { compileRoutePathRegex } from './regex.ts';
export type { CompileRouterOptions, RouteMatch, Router, RouterInput, UriCaptures } from './types.ts';
