/**
 * `/certificates` and `/certificates/{id or SNI name}` as Kong's (kong/api/routes/certificates.lua,
 * kong/db/dao/certificates.lua): the `snis` shorthand — a list of names written with the
 * certificate creates and removes its SNI rows, and every read returns the certificate with its
 * sorted SNI names. A path segment that is not a UUID is an SNI name: the certificate it points
 * at; an unknown name answers 404 `SNI not found`, except PUT, which creates a certificate with a
 * new id and that name among its SNIs.
 *
 * Registered before the generic entity endpoints (routes.ts), which then leave these two paths
 * alone; the nested `/certificates/{c}/snis` stay generic (the name alias is the entity service's
 * `keyAlias` lookup).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { uuidPattern } from '../config/fields.ts';
import { notFound, AdminError, schemaViolation } from './errors.ts';
import { dbLessWrite, endpoint, entityBody, listOptions, type RouteDeps } from './routes.ts';

const sniNotFound = () => new AdminError(404, { message: 'SNI not found' });

/** Splits `snis` off a body: undefined = not given, null = given as null, else the names. */
function takeSnis(body: unknown): { rest: unknown; snis: string[] | null | undefined } {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('snis' in body)) return { rest: body, snis: undefined };
  const { snis, ...rest } = body as Record<string, unknown>;
  if (snis === null) return { rest, snis: null };
  // A form field given once is a string (Kong: `snis=a.example.com`).
  if (typeof snis === 'string') return { rest, snis: [snis] };
  if (!Array.isArray(snis) || snis.some((s) => typeof s !== 'string')) throw schemaViolation([{ path: 'snis', message: 'expected an array of strings' }]);
  return { rest, snis: snis as string[] };
}

export function registerCertificateRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { service, store } = deps;
  const guardWrite = (verb: string) => {
    if (store.readOnly) throw dbLessWrite('certificates', verb);
  };
  const keyOf = (req: FastifyRequest) => decodeURIComponent((req.params as { key: string }).key);
  const withNames = async (row: { id: string } | null) => (row === null ? null : { ...row, snis: await service.sniNamesOf(row.id) });

  endpoint(app, '/certificates', {
    GET: async (req) => {
      const query = req.query as Record<string, unknown>;
      const page = await service.list('certificates', listOptions(query));
      const data = await Promise.all(page.data.map((row) => withNames(row)));
      const out: Record<string, unknown> = { data, next: null };
      if (page.offset) {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(query)) if (k !== 'offset' && typeof v === 'string') q.set(k, v);
        q.set('offset', page.offset);
        out.next = `/certificates?${q.toString()}`;
        out.offset = page.offset;
      }
      return out;
    },
    POST: async (req, reply) => {
      guardWrite('create');
      const { rest, snis } = takeSnis(await entityBody(deps, 'certificates', req.body));
      return reply.code(201).send(await service.writeCertificate('create', null, rest, snis ?? []));
    },
  });

  endpoint(app, '/certificates/:key', {
    GET: async (req) => {
      const key = keyOf(req);
      const row = await withNames(await service.find('certificates', key));
      if (row === null) throw uuidPattern.test(key) ? notFound() : sniNotFound();
      return row;
    },
    PUT: async (req) => {
      guardWrite('update');
      const key = keyOf(req);
      const { rest, snis } = takeSnis(await entityBody(deps, 'certificates', req.body));
      if (uuidPattern.test(key)) return service.writeCertificate('upsert', key, rest, snis ?? null);
      // By SNI name: that certificate, or a new one; the name stays among its SNIs.
      const existing = await service.find('certificates', key);
      const names = [...(snis ?? [])];
      if (!names.some((n) => n.toLowerCase() === key.toLowerCase())) names.push(key);
      return service.writeCertificate('upsert', existing?.id ?? randomUUID(), rest, names);
    },
    PATCH: async (req) => {
      guardWrite('update');
      const key = keyOf(req);
      const { rest, snis } = takeSnis(await entityBody(deps, 'certificates', req.body));
      const existing = await service.find('certificates', key);
      if (existing === null) throw uuidPattern.test(key) ? notFound() : sniNotFound();
      return service.writeCertificate('patch', existing.id, rest, snis === null ? [] : snis);
    },
    DELETE: async (req, reply) => {
      guardWrite('delete');
      const key = keyOf(req);
      if (!uuidPattern.test(key) && (await service.find('certificates', key)) === null) throw sniNotFound();
      await service.remove('certificates', key);
      return reply.code(204).send();
    },
  });
}
