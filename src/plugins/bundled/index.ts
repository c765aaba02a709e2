/** Every plugin bundled with Portcullis. Add new plugins here. */
import type { PluginDefinition } from '../sdk.ts';
import acl from './acl/index.ts';
import basicAuth from './basic-auth/index.ts';
import jwt from './jwt/index.ts';
import keyAuth from './key-auth/index.ts';
import oauth2 from './oauth2/index.ts';
import correlationId from './correlation-id/index.ts';
import cors from './cors/index.ts';
import fileLog from './file-log/index.ts';
import httpLog from './http-log/index.ts';
import openidConnect from './openid-connect/index.ts';
import opentelemetry from './opentelemetry/index.ts';
import prometheus from './prometheus/index.ts';
import proxyCache from './proxy-cache/index.ts';
import rateLimiting from './rate-limiting/index.ts';
import requestTermination from './request-termination/index.ts';
import ipRestriction from './ip-restriction/index.ts';
import requestSizeLimiting from './request-size-limiting/index.ts';
import requestTransformer from './request-transformer/index.ts';
import responseTransformer from './response-transformer/index.ts';

export const bundledPlugins: readonly PluginDefinition[] = [
  acl,
  basicAuth,
  jwt,
  keyAuth,
  oauth2,
  correlationId,
  cors,
  fileLog,
  httpLog,
  openidConnect,
  opentelemetry,
  prometheus,
  proxyCache,
  rateLimiting,
  requestTermination,
  ipRestriction,
  requestSizeLimiting,
  requestTransformer,
  responseTransformer,
];

/**
 * Kong's `plugins` setting (PORTCULLIS_PLUGINS): comma-separated names; `bundled` (the default)
 * stands for every bundled plugin, `off` for none. An unknown name is an error naming it.
 */
export function enabledPlugins(setting: string | undefined): PluginDefinition[] {
  const words = (setting === undefined || setting.trim() === '' ? 'bundled' : setting).split(',').map((w) => w.trim()).filter(Boolean);
  if (words.length === 1 && words[0] === 'off') return [];
  const out = new Map<string, PluginDefinition>();
  for (const w of words) {
    if (w === 'bundled') {
      for (const p of bundledPlugins) out.set(p.name, p);
      continue;
    }
    const def = bundledPlugins.find((p) => p.name === w);
    if (!def) throw new Error(`plugins: '${w}' is not an available plugin (available: bundled, off, ${bundledPlugins.map((p) => p.name).join(', ')})`);
    out.set(def.name, def);
  }
  return [...out.values()];
}
