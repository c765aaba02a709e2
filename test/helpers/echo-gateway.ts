/**
 * The usual set-up of a plugin test: an echo upstream and a gateway in front of it with one
 * service `echo` whose routes (and plugins) the test gives, started before the file's tests and
 * closed after them.
 */
import { after, before } from 'node:test';
import { startEcho, type EchoServer } from '../../demo/echo.ts';
import type { PluginDefinition } from '../../src/plugins/sdk.ts';
import { startGateway, type TestGateway } from './gateway.ts';
import { testClient, type TestClient, type TestResponse } from './http.ts';

export interface EchoGatewaySetup {
  /** Test plugins registered besides the bundled ones. */
  plugins?: PluginDefinition[];
  /** Plugins on the service `echo` (every route). */
  servicePlugins?: object[];
  routes: object[];
  consumers?: object[];
}

export interface EchoGateway {
  readonly echo: EchoServer;
  readonly gw: TestGateway;
  readonly client: TestClient;
  call(path: string, headers?: Record<string, string>, method?: string): Promise<TestResponse>;
}

/** Registers the before/after hooks; the returned fields are usable inside tests. */
export function echoGatewaySuite(setup: EchoGatewaySetup): EchoGateway {
  let echo: EchoServer | undefined;
  let gw: TestGateway | undefined;
  const client = testClient(() => gw!.proxyUrl);
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      plugins: setup.plugins,
      config: {
        _format_version: '3.0',
        services: [{
          name: 'echo', protocol: 'http', host: '127.0.0.1', port: echo.port,
          ...(setup.servicePlugins ? { plugins: setup.servicePlugins } : {}),
          routes: setup.routes,
        }],
        ...(setup.consumers ? { consumers: setup.consumers } : {}),
      },
    });
  });
  after(async () => {
    await client.close();
    await gw?.close();
    await echo?.close();
  });
  return {
    get echo() { return echo!; },
    get gw() { return gw!; },
    client,
    call: (path, headers = {}, method = 'GET') => client.call(path, { method, headers }),
  };
}
