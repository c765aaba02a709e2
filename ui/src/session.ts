/**
 * The UI's connection to the Admin API: the admin token (PORTCULLIS_ADMIN_TOKEN, sent as
 * Kong-Admin-Token), whether the Admin API asked for it, and whether the Admin API is reachable.
 * Every request the Kong UI packages make goes through `createAdminAxios` (they ask for their
 * axios instance through the 'get-axios-instance' injection of @kong-ui-public/core), so a wrong
 * token or a lost Admin API is noticed wherever it happens.
 */
import axios, { type AxiosInstance, type AxiosResponse, type CreateAxiosDefaults } from 'axios';
import { reactive } from 'vue';
import { config } from './config.ts';

const TOKEN_KEY = 'portcullis-admin-token';

export const session = reactive({
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
  /** The Admin API answered 401: the login form is shown. */
  needsLogin: false,
  /** The last login attempt was refused. */
  loginError: '',
  /** A request got no answer at all (network error): the banner is shown. */
  apiDown: false,
  /** GET / answered at least once (info below is loaded). */
  ready: false,
  info: null as Record<string, any> | null,
  /**
   * The field errors of the last refused write (Kong's `fields` object of a 400), flattened to
   * dotted paths; FieldErrors.vue shows each beside its field. Cleared when the next write starts.
   */
  fieldErrors: null as { at: number; fields: Array<[string, string]> } | null,
});

/** Kong's nested `fields` error object → [['config.issuer', 'message'], ...]. */
export function flattenFieldErrors(fields: unknown, prefix = ''): Array<[string, string]> {
  if (typeof fields === 'string') return [[prefix, fields]];
  if (Array.isArray(fields)) return fields.flatMap((v, i) => flattenFieldErrors(v, prefix ? `${prefix}.${i}` : String(i)));
  if (fields && typeof fields === 'object') {
    return Object.entries(fields as Record<string, unknown>).flatMap(([k, v]) => flattenFieldErrors(v, prefix ? `${prefix}.${k}` : k));
  }
  return [];
}

const writes = new Set(['post', 'put', 'patch']);

export function setToken(token: string): void {
  session.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let probe: ReturnType<typeof setInterval> | null = null;

function markDown(): void {
  session.apiDown = true;
  if (probe) return;
  // Ask again until the Admin API answers, then lift the banner.
  probe = setInterval(() => {
    void api.get('/').then(() => undefined, () => undefined);
  }, 3000);
}

function markUp(): void {
  session.apiDown = false;
  if (probe) {
    clearInterval(probe);
    probe = null;
  }
}

/** Field names that hold secrets: the plugin pages show them masked, revealed on demand. */
const secretField = /(secret|password|passphrase|private_key)s?$|^client_jwk$|^(access_)?token$/i;

function markSecrets(fields: Array<Record<string, any>>): void {
  for (const item of fields) {
    for (const [name, def] of Object.entries(item)) {
      if (!def || typeof def !== 'object') continue;
      if (secretField.test(name) && (def.type === 'string' || (def.type === 'array' && def.elements?.type === 'string'))) def.encrypted = true;
      if (Array.isArray(def.fields)) markSecrets(def.fields);
    }
  }
}

/**
 * What the plugin pages need from `GET /schemas/plugins/{name}` beyond what the Admin API says:
 * Kong's `encrypted` mark on secret fields (the config card then masks them, with a reveal
 * button), and Kong's `protocols` field with its default when the answer lacks it (older
 * Portcullis builds), so that the form does not send an empty list.
 */
function adaptPluginSchema(res: AxiosResponse): AxiosResponse {
  const url = String(res.config.url ?? '');
  const fields = (res.data as { fields?: Array<Record<string, any>> } | null)?.fields;
  if (!/\/schemas\/plugins\/[^/?]+(\?.*)?$/.test(url) || !Array.isArray(fields)) return res;
  if (!fields.some((f) => 'protocols' in f)) {
    fields.unshift({
      protocols: {
        type: 'set', required: true, default: ['grpc', 'grpcs', 'http', 'https'],
        elements: { type: 'string', one_of: ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'tls_passthrough', 'udp', 'ws', 'wss'] },
      },
    });
  }
  markSecrets(fields);
  return res;
}

/**
 * Kong's `GET /consumer_groups/{id}` answers `{consumer_group, consumers, plugins}` (what the
 * consumer group form reads); an Admin API that answers the bare entity (older Portcullis builds)
 * gets it wrapped here, with the group's consumers from `/consumer_groups/{id}/consumers`.
 */
async function adaptConsumerGroup(instance: AxiosInstance, res: AxiosResponse): Promise<AxiosResponse> {
  const url = String(res.config.url ?? '');
  const data = res.data as Record<string, any> | null;
  if (String(res.config.method).toLowerCase() !== 'get' || !/\/consumer_groups\/[^/?]+(\?.*)?$/.test(url) || !data || typeof data.id !== 'string' || 'consumer_group' in data) return res;
  const members = await instance.get(`${url.replace(/\?.*$/, '')}/consumers`).then((r) => r.data?.data ?? [], () => []);
  res.data = { consumer_group: data, consumers: members, plugins: [] };
  return res;
}

export function createAdminAxios(options: CreateAxiosDefaults = {}): AxiosInstance {
  // Credentials are the admin token header, never cookies.
  const instance = axios.create({ timeout: 30000, ...options, withCredentials: false });
  instance.interceptors.request.use((req) => {
    if (session.token) req.headers.set('Kong-Admin-Token', session.token);
    if (writes.has(String(req.method ?? '').toLowerCase())) session.fieldErrors = null;
    return req;
  });
  instance.interceptors.response.use(
    async (res) => {
      markUp();
      return adaptConsumerGroup(instance, adaptPluginSchema(res));
    },
    (err) => {
      if (axios.isAxiosError(err)) {
        if (!err.response && err.code !== 'ERR_CANCELED') markDown();
        else if (err.response) markUp();
        const data = err.response?.data as { fields?: unknown } | undefined;
        if (err.response?.status === 400 && writes.has(String(err.config?.method ?? '').toLowerCase()) && data?.fields) {
          session.fieldErrors = { at: Date.now(), fields: flattenFieldErrors(data.fields) };
        }
        if (err.response?.status === 401) {
          if (session.token) session.loginError = 'The admin token was refused.';
          session.needsLogin = true;
        }
      }
      return Promise.reject(err);
    },
  );
  return instance;
}

/** Our own pages' client: paths relative to the Admin API URL. */
export const api = createAdminAxios({ baseURL: config.adminApiUrl });

/** GET /: node information; a 401 shows the login form. */
export async function loadInfo(): Promise<boolean> {
  try {
    const res = await api.get('/');
    session.info = res.data;
    session.needsLogin = false;
    session.ready = true;
    return true;
  } catch {
    return false;
  }
}

/** Try a token: kept when GET / accepts it. */
export async function login(token: string): Promise<boolean> {
  setToken(token);
  session.loginError = '';
  const ok = await loadInfo();
  if (!ok && session.needsLogin) {
    session.loginError = 'The admin token was refused.';
    setToken('');
  }
  return ok;
}
