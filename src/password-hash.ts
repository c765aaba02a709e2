/**
 * Password hashes for basic-auth credentials: salted scrypt (node:crypto), stored as
 * `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (unpadded base64). Kong stores an unsalted
 * SHA-1 of password‖consumer id; Portcullis keeps the same API (the password is given in clear
 * on write, reads return only the hash) with a modern KDF instead.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

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
