/** xxHash32 (Kong's ring hash), from the xxhash-wasm package; instantiated once, at first use. */
import xxhash from 'xxhash-wasm';

let api: Awaited<ReturnType<typeof xxhash>> | null = null;

/**
 * Resolves once the WebAssembly module is ready (Balancers.apply awaits it before building
 * rings). No top-level await: a cluster worker must not wait on it while it loads.
 */
export const hashReady: Promise<void> = xxhash().then((a) => {
  api = a;
});

/** 32-bit xxHash of a string (seed 0), as an unsigned integer. */
export function h32(input: string): number {
  return api!.h32(input) >>> 0;
}
