/**
 * Password hashes for basic-auth credentials: salted scrypt (node:crypto), stored as
 * `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (unpadded base64). Kong stores an unsalted
 * SHA-1 of password‖consumer id; Portcullis keeps the same API (the password is given in clear
 * on write, reads return only the hash) with a modern KDF instead.
 */
import { pbkdf2, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const PREFIX = '$scrypt$';
const LOG_N = 14;
const R = 8;
const P = 1;
const KEY_LEN = 32;
const SALT_LEN = 16;
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{32,})$/;

/** True when `value` is already a hash made by `hashPassword` (a dump loaded back keeps it). */
export function isPasswordHash(value: string): boolean {
  return value.startsWith(PREFIX) && FORMAT.test(value);
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** A new salted hash of `password` (synchronous: write paths only, never per request). */
export function hashPassword(password: string): string {
  const salt = randomBytes(SALT_LEN);
  const hash = scryptSync(password, salt, KEY_LEN, { N: 1 << LOG_N, r: R, p: P });
  return `${PREFIX}ln=${LOG_N},r=${R},p=${P}$${b64(salt)}$${b64(hash)}`;
}

/** Whether `password` matches `stored` (a `hashPassword` result). Runs scrypt off the event loop. */
export function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = FORMAT.exec(stored);
  if (m === null) return Promise.resolve(false);
  const logN = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
  if (logN < 1 || logN > 20 || r < 1 || p < 1) return Promise.resolve(false);
  const salt = Buffer.from(m[4], 'base64');
  const expected = Buffer.from(m[5], 'base64');
  return new Promise((resolve) => {
    scrypt(password, salt, expected.length, { N: 1 << logN, r, p, maxmem: 256 * r * (1 << logN) }, (err, got) => {
      resolve(err === null && got.length === expected.length && timingSafeEqual(got, expected));
    });
  });
}

const PBKDF2_PREFIX = '$pbkdf2-sha512$';
const PBKDF2_FORMAT = /^\$pbkdf2-sha512\$i=(\d{1,7}),l=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** True when `value` is an oauth2 client-secret hash (Kong's `hash_secret` format). */
export function isSecretHash(value: string): boolean {
  return value.startsWith(PBKDF2_PREFIX) && PBKDF2_FORMAT.test(value);
}

/**
 * An oauth2 `client_secret` hash in Kong's format: PBKDF2-SHA512, 10000 iterations, 32-byte key,
 * 16-byte salt, `$pbkdf2-sha512$i=10000,l=32$<salt>$<hash>` (unpadded base64).
 */
export function hashClientSecret(secret: string): string {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(secret, salt, 10000, 32, 'sha512');
  return `${PBKDF2_PREFIX}i=10000,l=32$${b64(salt)}$${b64(hash)}`;
}

export function verifyClientSecret(secret: string, stored: string): Promise<boolean> {
  const m = PBKDF2_FORMAT.exec(stored);
  if (m === null) return Promise.resolve(false);
  const iterations = Number(m[1]), len = Number(m[2]);
  const salt = Buffer.from(m[3], 'base64');
  const expected = Buffer.from(m[4], 'base64');
  if (iterations < 1 || len !== expected.length) return Promise.resolve(false);
  return new Promise((resolve) => {
    pbkdf2(secret, salt, iterations, len, 'sha512', (err, got) => resolve(err === null && timingSafeEqual(got, expected)));
  });
}
