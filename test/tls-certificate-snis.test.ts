/**
 * The certificates entity's `snis` shorthand, as Kong's (kong/db/dao/certificates.lua,
 * kong/api/routes/certificates.lua): `POST /certificates` with `snis: [...]` creates the SNI rows
 * and answers them sorted; PUT replaces them, PATCH with `snis` replaces, without keeps; reads
 * list them; `/certificates/{sni name}` addresses the certificate; conflicts and bad names are 400
 * under `snis` with nothing stored; decK files take `snis: [name, ...]` under a certificate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

type Body = Record<string, unknown>;

async function admin(gw: TestGateway, method: string, path: string, body?: unknown, form?: string): Promise<{ status: number; body: Body }> {
  const init: RequestInit = { method };
  if (form !== undefined) init.headers = { 'content-type': 'application/x-www-form-urlencoded' };
  else if (body !== undefined) init.headers = { 'content-type': 'application/json' };
  if (form !== undefined) init.body = form;
  else if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(`${gw.adminUrl}${path}`, init);
  const text = await r.text();
  return { status: r.status, body: text === '' ? {} : JSON.parse(text) as Body };
}

function cnOf(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cn = /CN=([^\n,]+)/.exec(s.getPeerX509Certificate()!.subject)![1];
      s.destroy();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

const certs: Record<string, IssuedCert> = {};
before(async () => {
  for (const k of ['one', 'two', 'three']) certs[k] = await issueCert({ cn: k });
});

describe('certificates `snis` shorthand through the Admin API', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ proxyListen: '127.0.0.1:0 ssl', database: 'sqlite' });
  });
  after(async () => {
    await gw.close();
  });

  it('POST with snis creates the SNIs, answers them sorted, and they are served', async () => {
    const c = await admin(gw, 'POST', '/certificates', { cert: certs.one.cert, key: certs.one.key, snis: ['b.one.test', 'A.one.test'] });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.deepEqual(c.body.snis, ['a.one.test', 'b.one.test']);
    const id = c.body.id as string;
    assert.deepEqual(((await admin(gw, 'GET', '/snis/a.one.test')).body.certificate as Body).id, id);
    assert.deepEqual((await admin(gw, 'GET', `/certificates/${id}`)).body.snis, ['a.one.test', 'b.one.test']);
    const list = (await admin(gw, 'GET', '/certificates')).body.data as Body[];
    assert.deepEqual(list.find((x) => x.id === id)?.snis, ['a.one.test', 'b.one.test']);
    // Without snis: an empty list.
    const bare = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key });
    assert.deepEqual(bare.body.snis, []);
    await waitFor(async () => (await cnOf(gw.node.proxyPorts()[0], 'b.one.test')) === 'one', 10_000, 'the certificate served for its SNI');
  });

  it('/certificates/{sni name}: GET, PATCH (snis replaced or kept), DELETE; unknown names 404 "SNI not found"', async () => {
    const byName = await admin(gw, 'GET', '/certificates/a.one.test');
    assert.equal(byName.status, 200);
    assert.deepEqual(byName.body.snis, ['a.one.test', 'b.one.test']);
    const id = byName.body.id as string;
    assert.deepEqual(await admin(gw, 'GET', '/certificates/nothing.test'), { status: 404, body: { message: 'SNI not found' } });
    assert.equal((await admin(gw, 'PATCH', '/certificates/nothing.test', { tags: ['x'] })).status, 404);
    assert.equal((await admin(gw, 'DELETE', '/certificates/nothing.test')).status, 404);
    // PATCH without snis keeps them; with snis replaces them (b removed, c added).
    const tagged = await admin(gw, 'PATCH', '/certificates/a.one.test', { tags: ['tagged'] });
    assert.equal(tagged.status, 200, JSON.stringify(tagged.body));
    assert.deepEqual([tagged.body.id, tagged.body.tags, tagged.body.snis], [id, ['tagged'], ['a.one.test', 'b.one.test']]);
    const replaced = await admin(gw, 'PATCH', `/certificates/${id}`, { snis: ['c.one.test', 'a.one.test'] });
    assert.deepEqual(replaced.body.snis, ['a.one.test', 'c.one.test']);
    assert.equal((await admin(gw, 'GET', '/snis/b.one.test')).status, 404);
    assert.equal((await admin(gw, 'GET', '/snis/c.one.test')).status, 200);
    // The nested collection is reachable by SNI name too.
    const nested = await admin(gw, 'GET', '/certificates/c.one.test/snis');
    assert.deepEqual((nested.body.data as Body[]).map((s) => s.name).sort(), ['a.one.test', 'c.one.test']);
  });

  it('PUT replaces the SNIs (none given: none left); PUT by an unknown name creates a certificate with that name', async () => {
    const id = (await admin(gw, 'GET', '/certificates/a.one.test')).body.id as string;
    const put = await admin(gw, 'PUT', `/certificates/${id}`, { cert: certs.one.cert, key: certs.one.key, snis: ['d.one.test'] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.snis, ['d.one.test']);
    assert.equal((await admin(gw, 'GET', '/snis/a.one.test')).status, 404);
    const cleared = await admin(gw, 'PUT', `/certificates/${id}`, { cert: certs.one.cert, key: certs.one.key });
    assert.deepEqual(cleared.body.snis, []);
    const created = await admin(gw, 'PUT', '/certificates/new.two.test', { cert: certs.two.cert, key: certs.two.key, snis: ['other.two.test'] });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.deepEqual(created.body.snis, ['new.two.test', 'other.two.test']);
    assert.match(String(created.body.id), /^[0-9a-f-]{36}$/);
    assert.equal((await admin(gw, 'GET', '/certificates/other.two.test')).body.id, created.body.id);
    // PUT by that name again updates the same certificate.
    const again = await admin(gw, 'PUT', '/certificates/new.two.test', { cert: certs.two.cert, key: certs.two.key, tags: ['again'] });
    assert.deepEqual([again.body.id, again.body.snis, again.body.tags], [created.body.id, ['new.two.test'], ['again']]);
    assert.equal((await admin(gw, 'DELETE', '/certificates/new.two.test')).status, 204);
    assert.equal((await admin(gw, 'GET', `/certificates/${String(created.body.id)}`)).status, 404);
    assert.equal((await admin(gw, 'GET', '/snis/new.two.test')).status, 404);
  });

  it('a form body takes snis as a single field or a list', async () => {
    const one = await admin(gw, 'POST', '/certificates', undefined, new URLSearchParams({ cert: certs.two.cert, key: certs.two.key, snis: 'form.two.test' }).toString());
    assert.equal(one.status, 201, JSON.stringify(one.body));
    assert.deepEqual(one.body.snis, ['form.two.test']);
    const q = new URLSearchParams({ snis: 'f1.two.test' });
    q.append('snis', 'f2.two.test');
    const two = await admin(gw, 'PATCH', `/certificates/${String(one.body.id)}`, undefined, q.toString());
    assert.deepEqual(two.body.snis, ['f1.two.test', 'f2.two.test']);
    assert.equal((await admin(gw, 'DELETE', `/certificates/${String(one.body.id)}`)).status, 204);
  });

  it('bad snis: duplicates, bad names, a name of another certificate; nothing stored', async () => {
    const owner = await admin(gw, 'POST', '/certificates', { cert: certs.two.cert, key: certs.two.key, snis: ['taken.test'] });
    const ownerId = owner.body.id as string;
    const before = ((await admin(gw, 'GET', '/certificates')).body.data as unknown[]).length;
    const dup = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key, snis: ['x.test', 'x.test'] });
    assert.equal(dup.status, 400);
    assert.deepEqual(dup.body.fields, { snis: 'x.test is duplicated' });
    assert.equal(dup.body.name, 'schema violation');
    const taken = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key, snis: ['fresh.test', 'taken.test'] });
    assert.equal(taken.status, 400);
    assert.deepEqual(taken.body.fields, { snis: `taken.test already associated with existing certificate '${ownerId}'` });
    const bad = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key, snis: ['ok.test', '10.0.0.1'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields, { snis: [null, 'must not be an IP'] });
    const notList = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key, snis: [1] });
    assert.equal(notList.status, 400);
    assert.equal(((await admin(gw, 'GET', '/certificates')).body.data as unknown[]).length, before, 'no certificate stored');
    assert.equal((await admin(gw, 'GET', '/snis/fresh.test')).status, 404, 'no SNI stored');
    // A PATCH that would take another certificate's name is refused as a whole.
    const mine = await admin(gw, 'POST', '/certificates', { cert: certs.three.cert, key: certs.three.key, snis: ['mine.test'] });
    const steal = await admin(gw, 'PATCH', `/certificates/${String(mine.body.id)}`, { tags: ['t'], snis: ['taken.test'] });
    assert.equal(steal.status, 400);
    const kept = await admin(gw, 'GET', `/certificates/${String(mine.body.id)}`);
    assert.deepEqual([kept.body.tags, kept.body.snis], [null, ['mine.test']]);
  });
});

describe('certificates `snis` shorthand in decK files', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      proxyListen: '127.0.0.1:0 ssl',
      config: {
        certificates: [
          { cert: certs.one.cert, key: certs.one.key, snis: ['deck.one.test', { name: 'obj.one.test' }] },
          { cert: certs.two.cert, key: certs.two.key, snis: ['deck.two.test'] },
        ],
      },
    });
  });
  after(async () => {
    await gw.close();
  });

  it('names written as strings create SNIs like `- name:` entries', async () => {
    const port = gw.node.proxyPorts()[0];
    assert.equal(await cnOf(port, 'deck.one.test'), 'one');
    assert.equal(await cnOf(port, 'obj.one.test'), 'one');
    assert.equal(await cnOf(port, 'deck.two.test'), 'two');
    assert.deepEqual((await admin(gw, 'GET', '/certificates/deck.two.test')).body.snis, ['deck.two.test']);
  });

  it('a duplicate or invalid name in the file is an error naming its path', async () => {
    const ok = await gw.reload({ certificates: [{ cert: certs.one.cert, key: certs.one.key, snis: ['dup.test'] }, { cert: certs.two.cert, key: certs.two.key, snis: ['dup.test', '10.1.1.1'] }] });
    assert.equal(ok, false);
    const text = gw.logText();
    assert.match(text, /certificates\[1\]\.snis\[0\]\.name: duplicate name 'dup.test'/);
    assert.match(text, /certificates\[1\]\.snis\[1\]\.name: must not be an IP/);
  });
});
