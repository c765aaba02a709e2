/** The `config` every Kong UI package component takes, for Kong Manager (app type kongManager). */
import { config } from './config.ts';
import { session } from './session.ts';

/**
 * The packages switch features on Kong's release number; the gateway follows Kong 3.x's vocabulary,
 * so a version that does not read as 3.x (ours is 0.1.0 until GET / says otherwise) counts as 3.9.
 */
function kongVersion(): string {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(String(session.info?.version ?? ''));
  return m && Number(m[1]) >= 3 ? m[0] : '3.9.0';
}

export function baseConfig() {
  return {
    app: 'kongManager' as const,
    workspace: '',
    gatewayInfo: { edition: 'community' as const, version: kongVersion() },
    apiBaseUrl: config.adminApiUrl,
  };
}

/** Lists: Kong OSS filters by exact match and does not sort (as Kong Manager sets for community). */
export function listConfig() {
  return { ...baseConfig(), isExactMatch: true, disableSorting: true };
}
