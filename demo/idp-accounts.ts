/**
 * The demo IdP's in-memory users and the claims each scope releases.
 * Passwords are plain text on purpose: these are published demo credentials, never real ones.
 */
import { timingSafeEqual } from 'node:crypto';

export interface DemoUser {
  readonly sub: string;
  readonly username: string;
  readonly password: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The fixed demo users. `sub` equals the username so tests can predict it. */
export const demoUsers: readonly DemoUser[] = Object.freeze([
  {
    sub: 'alex',
    username: 'alex',
    password: 'doe',
    claims: {
      name: 'Alex Doe',
      given_name: 'Alex',
      family_name: 'Doe',
      preferred_username: 'alex',
      email: 'alex@example.com',
      email_verified: true,
      groups: ['admins', 'users'],
      realm_access: { roles: ['admin', 'reader'] },
    },
  },
  {
    sub: 'jane',
    username: 'jane',
    password: 'doe2',
    claims: {
      name: 'Jane Doe',
      given_name: 'Jane',
      family_name: 'Doe',
      preferred_username: 'jane',
      email: 'jane@example.com',
      email_verified: true,
      groups: ['users'],
      realm_access: { roles: ['reader'] },
    },
  },
  {
    // A user with no group or role membership at all, for authorization-failure tests.
    sub: 'nogroups',
    username: 'nogroups',
    password: 'nogroups-pass',
    claims: {
      name: 'No Groups',
      given_name: 'No',
      family_name: 'Groups',
      preferred_username: 'nogroups',
      email: 'nogroups@example.com',
      email_verified: false,
    },
  },
]);

/**
 * Which claims each scope releases (OIDC Core §5.4 for profile/email; `groups` and `roles`
 * are the demo's own scopes, modelled on what Keycloak-style IdPs put into tokens).
 */
export const scopeClaims = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
  roles: ['realm_access'],
} as const;

/** Claims copied into every JWT access token issued for a user (when the user has them). */
export const accessTokenUserClaims = ['preferred_username', 'groups', 'realm_access'] as const;

export function findUser(sub: string): DemoUser | undefined {
  return demoUsers.find((u) => u.sub === sub);
}

function sameString(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Checks a username/password pair; constant-time on the password. */
export function authenticate(username: unknown, password: unknown): DemoUser | undefined {
  if (typeof username !== 'string' || typeof password !== 'string') return undefined;
  const user = demoUsers.find((u) => u.username === username);
  if (!user) return undefined;
  return sameString(user.password, password) ? user : undefined;
}

/** The oidc-provider Account object for a user: `claims()` returns everything; the provider filters by scope. */
export function toAccount(user: DemoUser): { accountId: string; claims(): Promise<Record<string, unknown>> } {
  return {
    accountId: user.sub,
    async claims() {
      return { sub: user.sub, ...structuredClone(user.claims) };
    },
  };
}
