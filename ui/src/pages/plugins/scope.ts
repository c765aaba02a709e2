/** Which entity a plugin page is scoped to: from the route (a tab) or the query (?serviceId=). */
import type { RouteLocationNormalizedLoaded } from 'vue-router';

export interface Scope {
  id: string;
  /** Admin API collection (what the packages call entityType). */
  type: 'services' | 'routes' | 'consumers' | 'consumer_groups';
  /** Query key carrying it between pages. */
  queryKey: 'serviceId' | 'routeId' | 'consumerId' | 'consumerGroupId';
  /** Route name of the scoped entity's plugins tab. */
  pluginsTab: string;
}

const scopes: Array<Omit<Scope, 'id'> & { meta: string }> = [
  { meta: 'services', type: 'services', queryKey: 'serviceId', pluginsTab: 'service-detail-plugins' },
  { meta: 'routes', type: 'routes', queryKey: 'routeId', pluginsTab: 'route-detail-plugins' },
  { meta: 'consumers', type: 'consumers', queryKey: 'consumerId', pluginsTab: 'consumer-detail-plugins' },
  { meta: 'consumer_groups', type: 'consumer_groups', queryKey: 'consumerGroupId', pluginsTab: 'consumer_group-detail-plugins' },
];

export function scopeOf(route: RouteLocationNormalizedLoaded): Scope | null {
  const fromMeta = scopes.find((s) => s.meta === route.meta.scopedIn);
  if (fromMeta) return { ...fromMeta, id: String(route.params.id ?? '') };
  for (const s of scopes) {
    const v = route.query[s.queryKey];
    if (typeof v === 'string' && v !== '') return { ...s, id: v };
  }
  return null;
}

export function scopeQuery(scope: Scope | null): Record<string, string> {
  return scope ? { [scope.queryKey]: scope.id } : {};
}
