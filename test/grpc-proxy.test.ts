/**
 * gRPC through the gateway: a real @grpc/grpc-js server behind a grpc service, a grpc-js client
 * in front of an h2c listener; unary and server-streaming calls, trailers (status, metadata)
 * intact, gateway errors as gRPC status codes, openid-connect bearer auth from metadata.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startIdp, type DemoIdp } from './helpers/idp.ts';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

const service = {
  unary: {
    path: '/demo.Echo/Unary', requestStream: false, responseStream: false,
    requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
  },
  stream: {
    path: '/demo.Echo/Stream', requestStream: false, responseStream: true,
    requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
  },
  fail: {
    path: '/demo.Echo/Fail', requestStream: false, responseStream: false,
    requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;

type Msg = { text: string; authorization?: string; forwarded?: string };
type EchoClient = grpc.Client & {
  unary(req: Msg, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientUnaryCall;
  stream(req: Msg, md?: grpc.Metadata): grpc.ClientReadableStream<Msg>;
  fail(req: Msg, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientUnaryCall;
};
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo') as unknown as new (addr: string, creds: grpc.ChannelCredentials) => EchoClient;

function unary(client: EchoClient, req: Msg, md = new grpc.Metadata()): Promise<{ res: Msg; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let trailers = new grpc.Metadata();
    const call = client.unary(req, md, (err, res) => (err ? reject(err) : setImmediate(() => resolve({ res: res!, trailers }))));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

describe('gRPC proxying', () => {
  let server: grpc.Server;
  let upstreamPort = 0;
  let gw: TestGateway;
  let client: EchoClient;
  let idp: DemoIdp;

  before(async () => {
    server = new grpc.Server();
    server.addService(service, {
      unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        const trailer = new grpc.Metadata();
        trailer.set('x-upstream-trailer', 'kept');
        cb(null, { text: `echo: ${call.request.text}`, forwarded: String(call.metadata.get('x-forwarded-proto')[0] ?? '') }, trailer);
      },
      stream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        for (let i = 0; i < 5; i++) call.write({ text: `${call.request.text} #${i}` });
        call.end();
      },
      fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        cb({ code: grpc.status.FAILED_PRECONDITION, details: 'upstream says no' });
      },
    });
    upstreamPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
    idp = await startIdp();
    gw = await startGateway({
      proxyListen: '127.0.0.1:0 http2',
      config: {
        services: [{
          name: 'grpc-echo', protocol: 'grpc', host: '127.0.0.1', port: upstreamPort,
          routes: [{ name: 'echo', protocols: ['grpc'], paths: ['/demo.Echo/'] }],
        }, {
          name: 'grpc-secure', protocol: 'grpc', host: '127.0.0.1', port: upstreamPort,
          routes: [{ name: 'secure', protocols: ['grpc'], headers: { 'x-secure': ['yes'] }, paths: ['/demo.Echo/'] }],
        }],
        plugins: [{
          name: 'openid-connect', service: 'grpc-secure',
          config: { issuer: idp.issuer, client_id: ['kong'], client_secret: ['kong-secret'], client_auth: ['client_secret_post'], auth_methods: ['bearer'] },
        }],
      },
    });
    client = new EchoClient(`127.0.0.1:${gw.node.proxyPorts()[0]}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await gw?.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    await idp?.close();
  });

  it('openid-connect bearer auth on a gRPC route: the token in the authorization metadata', async () => {
    const md = new grpc.Metadata();
    md.set('x-secure', 'yes');
    await assert.rejects(unary(client, { text: 'no token' }, md), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      return true;
    });
    const r = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', scope: 'openid', client_id: 'kong', client_secret: 'kong-secret' }),
    });
    const token = ((await r.json()) as { access_token: string }).access_token;
    const authed = new grpc.Metadata();
    authed.set('x-secure', 'yes');
    authed.set('authorization', `Bearer ${token}`);
    const { res } = await unary(client, { text: 'with token' }, authed);
    assert.equal(res.text, 'echo: with token');
  });

  it('a unary call goes end to end over h2, trailers intact', async () => {
    const { res, trailers } = await unary(client, { text: 'hi' });
    assert.equal(res.text, 'echo: hi');
    assert.equal(res.forwarded, 'http');
    assert.deepEqual(trailers.get('x-upstream-trailer'), ['kept']);
  });

  it('a server-streaming call delivers every message', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.stream({ text: 'tick' });
      call.on('data', (m: Msg) => got.push(m.text));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    assert.deepEqual(got, ['tick #0', 'tick #1', 'tick #2', 'tick #3', 'tick #4']);
  });

  it('an upstream gRPC error status reaches the client unchanged', async () => {
    await assert.rejects(new Promise((resolve, reject) => client.fail({ text: 'x' }, new grpc.Metadata(), (err, res) => (err ? reject(err) : resolve(res)))), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(err.details, 'upstream says no');
      return true;
    });
  });

  it('no route: the gateway answers with grpc-status 5 (NOT_FOUND) and its message', async () => {
    const Other = grpc.makeGenericClientConstructor({ x: { ...service.unary, path: '/other.Svc/Method' } }, 'Other') as unknown as new (a: string, c: grpc.ChannelCredentials) => grpc.Client & { x: EchoClient['unary'] };
    const other = new Other(`127.0.0.1:${gw.node.proxyPorts()[0]}`, grpc.credentials.createInsecure());
    try {
      await assert.rejects(new Promise((resolve, reject) => other.x({ text: 'x' }, new grpc.Metadata(), (err, res) => (err ? reject(err) : resolve(res)))), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.NOT_FOUND);
        assert.equal(err.details, 'no Route matched with those values');
        return true;
      });
    } finally {
      other.close();
    }
  });

  it('an HTTP request to a grpc-only route does not match it', async () => {
    const r = await fetch(`http://127.0.0.1:${gw.node.proxyPorts()[0]}/demo.Echo/Unary`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 404);
  });
});
