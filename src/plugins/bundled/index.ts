/** Every plugin bundled with Portcullis. Add new plugins here. */
import type { PluginDefinition } from '../sdk.ts';
import acl from './acl/index.ts';
import correlationId from './correlation-id/index.ts';
import cors from './cors/index.ts';
import fileLog from './file-log/index.ts';
import httpLog from './http-log/index.ts';
import openidConnect from './openid-connect/index.ts';
import prometheus from './prometheus/index.ts';
import rateLimiting from './rate-limiting/index.ts';
import requestTermination from './request-termination/index.ts';

export const bundledPlugins: readonly PluginDefinition[] = [
  acl,
  correlationId,
  cors,
  fileLog,
  httpLog,
  openidConnect,
  prometheus,
  rateLimiting,
  requestTermination,
];
