/** Shared by the issuer pages: issuer URL matching and the openid-connect plugins that use an issuer. */
import { api } from '../../session.ts';

export function normIssuer(s: string): string {
  return s.replace(/\/\.well-known\/openid-configuration$/, '').replace(/\/+$/, '');
}

async function all(path: string): Promise<Array<Record<string, any>>> {
  const out: Array<Record<string, any>> = [];
  let offset: string | null = null;
  do {
    const res: { data: { data: Array<Record<string, any>>; offset?: string | null } } = await api.get(path, { params: { size: 1000, ...(offset ? { offset } : {}) } });
    out.push(...res.data.data);
    offset = res.data.offset ?? null;
  } while (offset);
  return out;
}

export interface IssuerUse {
  plugin: Record<string, any>;
  /** Routes the plugin applies to, with a path the code flow can start from. */
  routes: Array<Record<string, any>>;
}

/** Every configured openid-connect plugin, grouped by issuer URL (normalized). */
export async function issuerUses(): Promise<Map<string, IssuerUse[]>> {
  const [plugins, routes] = await Promise.all([all('/plugins'), all('/routes')]);
  const out = new Map<string, IssuerUse[]>();
  for (const p of plugins) {
    if (p.name !== 'openid-connect' || typeof p.config?.issuer !== 'string') continue;
    const applies = routes.filter((r) => {
      if (p.route?.id) return r.id === p.route.id;
      if (p.service?.id) return r.service?.id === p.service.id;
      return true;
    });
    const key = normIssuer(p.config.issuer);
    out.set(key, [...(out.get(key) ?? []), { plugin: p, routes: applies }]);
  }
  return out;
}

/** Node-wide openid-connect cache counters from GET /metrics (prom text). */
export async function cacheStats(): Promise<Array<{ name: string; labels: string; value: string }>> {
  try {
    const res = await api.get('/metrics', { responseType: 'text', transformResponse: (x) => x });
    const text = String(res.data);
    const rows: Array<{ name: string; labels: string; value: string }> = [];
    for (const line of text.split('\n')) {
      const m = /^(portcullis_oidc_(?:cache_lookups_total|jwks_refreshes_total|idp_requests_total))\{([^}]*)\}\s+(\S+)/.exec(line);
      if (m) rows.push({ name: m[1], labels: m[2].replace(/"/g, ''), value: m[3] });
    }
    return rows;
  } catch {
    return [];
  }
}
