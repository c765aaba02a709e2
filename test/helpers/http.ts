/**
 * A small HTTP client for tests that need full control of headers (undici `request` with its own
 * keep-alive Agent), and an `assert.rejects` validator for config errors.
 */
import { Agent, request } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { ConfigError } from '../../src/errors.ts';

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  readonly body: any;
}

export interface TestClient {
  call(path: string, options?: { method?: string; headers?: Record<string, string> }): Promise<TestResponse>;
  close(): Promise<void>;
}

/** `base()` is read on every call, so the client can be made before the server starts. */
export function testClient(base: () => string): TestClient {
  const agent = new Agent();
  return {
    async call(path, options = {}) {
      const res = await request(`${base()}${path}`, { method: (options.method ?? 'GET') as 'GET', headers: options.headers ?? {}, dispatcher: agent });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text, get body() { return JSON.parse(text); } };
    },
    close: () => agent.close(),
  };
}

/** `assert.rejects` validator: a ConfigError one of whose issues matches `re`. */
export const configIssue = (re: RegExp) => (err: unknown): boolean => err instanceof ConfigError && re.test(err.format());
