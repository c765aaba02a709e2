/** xxHash32 (Kong's ring hash), from the xxhash-wasm package; instantiated once at load. */
import xxhash from 'xxhash-wasm';

const api = await xxhash();

/** 32-bit xxHash of a string (seed 0), as an unsigned integer. */
export function h32(input: string): number {
  return api.h32(input) >>> 0;
}
