/**
 * proxy-cache's Admin API (Kong's kong/plugins/proxy-cache/api.lua):
 *
 * - `DELETE /proxy-cache`: purge every entry → 204;
 * - `GET /proxy-cache/{cache_key}`: the entry of any proxy-cache plugin → 200 with Kong's shape
 *   (`status`, `headers`, `body`, `body_len`, `timestamp`, `ttl`, `version`), else 404;
 * - `DELETE /proxy-cache/{cache_key}` → 204, else 404;
 * - `GET|DELETE /proxy-cache/{plugin_id}/caches/{cache_key}`: the same for one plugin.
 *
 * 404s answer Kong's `{"message":"Not found"}`. Entries are found in the shared key-value store
 * (storage.ts), so the plugin rows are not read: a plugin id that is not a proxy-cache plugin's
 * simply has no entries (Kong answers 404 for an unknown id too).
 */
import type { PluginAdminRoute } from '../../sdk.ts';
import { entriesFor, entryOf, isCacheKey, kongView, purgeAll, purgeKey, storageKey } from './storage.ts';

const notFound = { status: 404, body: { message: 'Not found' } };

export const proxyCacheAdminRoutes: PluginAdminRoute[] = [
  {
    method: 'DELETE',
    path: '/proxy-cache',
    async handler(_req, deps) {
      await purgeAll(deps.sharedKv);
      return { status: 204 };
    },
  },
  {
    method: 'GET',
    path: '/proxy-cache/:cache_key',
    async handler(req, deps) {
      const key = req.params.cache_key;
      if (!isCacheKey(key)) return notFound;
      const [first] = await entriesFor(deps.sharedKv, key);
      return first === undefined ? notFound : { status: 200, body: kongView(first.entry) };
    },
  },
  {
    method: 'DELETE',
    path: '/proxy-cache/:cache_key',
    async handler(req, deps) {
      const key = req.params.cache_key;
      if (!isCacheKey(key)) return notFound;
      return (await purgeKey(deps.sharedKv, key)) > 0 ? { status: 204 } : notFound;
    },
  },
  {
    method: 'GET',
    path: '/proxy-cache/:plugin_id/caches/:cache_key',
    async handler(req, deps) {
      const key = req.params.cache_key;
      if (!isCacheKey(key)) return notFound;
      const entry = await entryOf(deps.sharedKv, req.params.plugin_id, key);
      return entry === null ? notFound : { status: 200, body: kongView(entry) };
    },
  },
  {
    method: 'DELETE',
    path: '/proxy-cache/:plugin_id/caches/:cache_key',
    async handler(req, deps) {
      const key = req.params.cache_key;
      if (!isCacheKey(key)) return notFound;
      if ((await entryOf(deps.sharedKv, req.params.plugin_id, key)) === null) return notFound;
      await deps.sharedKv.delete(storageKey(key, req.params.plugin_id));
      return { status: 204 };
    },
  },
];
