/** Request body fields (form or JSON), parsed once per request and only when a step asks. */
import type { IncomingView } from '../../sdk.ts';

/** Methods whose body is never read for fields. */
export function noBody(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

/** Request body fields, parsed lazily (form or JSON; anything else has none). */
export class BodyFields {
  readonly #request: IncomingView;
  #fields: Promise<Map<string, string>> | null = null;
  constructor(request: IncomingView) {
    this.#request = request;
  }
  get(name: string): Promise<string | undefined> {
    this.#fields ??= this.#parse();
    return this.#fields.then((f) => f.get(name));
  }
  async #parse(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (noBody(this.#request.method)) return out;
    const form = await this.#request.form();
    if (form) {
      for (const [k, v] of form) if (!out.has(k)) out.set(k, v);
      return out;
    }
    const json = await this.#request.json();
    // JSON `null` or arrays carry no fields (a JSON null body once caused 500s in Kong).
    if (json && typeof json === 'object' && !Array.isArray(json)) {
      for (const [k, v] of Object.entries(json as Record<string, unknown>)) if (typeof v === 'string') out.set(k, v);
    }
    return out;
  }
}
