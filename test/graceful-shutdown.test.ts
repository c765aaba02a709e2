/**
 * SIGTERM on a multi-worker node with keep-alive clients: every request in flight and every
 * request arriving on an open connection is answered, with `Connection: close`; idle keep-alive
 * connections are closed; the node exits as soon as the last request finished (well before the
 * drain timeout). No client sees an error.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho } from '../demo/echo.ts';
import { startGatewayProcess } from './helpers/process.ts';

function deck(echoUrl: string): string {
  return `_format_version: "3.0"
services:
  - name: echo
    url: ${echoUrl}
    routes:
      - { name: r, paths: [/] }
`;
}

interface Answer { status: number; connection: string | undefined }

function get(agent: http.Agent, url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('graceful shutdown (SIGTERM)', () => {
  test('32 keep-alive clients: 0 errors, replies during the drain say Connection: close, exit long before the drain timeout', { timeout: 60_000 }, async () => {
    const echo = await startEcho();
    // PORTCULLIS_DRAIN_TIMEOUT is 10 s in the helper: a drain that waits it out fails the timing check.
    const gw = await startGatewayProcess({ config: deck(echo.url), workers: 2, env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off' } })
      .catch(async (err: unknown) => {
        await echo.close();
        throw err;
      });
    const clients = 32;
    const agents = Array.from({ length: clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      // Every client holds an open keep-alive connection.
      for (const a of agents) assert.equal((await get(a, `${gw.proxyUrl}/anything/warm`)).status, 200);
      // Half the clients have a slow request in flight when SIGTERM arrives, and go on sending on
      // their connection for as long as the gateway says keep-alive (as a browser or a pool would).
      const errors: string[] = [];
      const answers: Answer[] = [];
      let signalled = false;
      const afterSignal: Answer[] = [];
      const busy = agents.slice(0, clients / 2).map(async (a, i) => {
        let path = `/delay/1500?c=${i}`;
        for (;;) {
          let r: Answer;
          try {
            r = await get(a, `${gw.proxyUrl}${path}`);
          } catch (err) {
            errors.push((err as Error).message);
            return;
          }
          answers.push(r);
          if (signalled) afterSignal.push(r);
          if (r.connection === 'close') return;
          if (signalled && answers.length > 10_000) return;
          path = `/anything/next?c=${i}`;
        }
      });
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      signalled = true;
      gw.proc.kill('SIGTERM');
      await Promise.all(busy);
      const code = await gw.exited;
      const took = Date.now() - t0;
      assert.deepEqual(errors, []);
      assert.ok(answers.every((r) => r.status === 200), `statuses: ${[...new Set(answers.map((r) => r.status))].join(',')}`);
      assert.ok(afterSignal.length >= clients / 2);
      // The answer each busy client got last (the slow one in flight at SIGTERM, or one sent on
      // its open connection during the drain) says the connection closes.
      assert.equal(afterSignal.filter((r) => r.connection === 'close').length, clients / 2);
      assert.equal(code, 0);
      assert.ok(took < 8000, `the node took ${took} ms to stop (drain timeout 10 s)`);
    } finally {
      for (const a of agents) a.destroy();
      await gw.stop();
      await echo.close();
    }
  });
});
