/**
 * The entity kinds with list/create/edit/detail pages, and which Kong UI package component shows
 * each page. One table, so that adding a kind is one entry (the generic pages in pages/entity/
 * read it). Route names follow Kong Manager's (`service-detail`, ...) because the packages'
 * cross-links (a plugin's scope, a certificate's SNIs) ask for them by name.
 */
import { defineAsyncComponent, type Component } from 'vue';

// Each package is loaded when one of its pages is first shown, so the first page (the overview)
// does not wait for all of them.
const lazy = <M>(load: () => Promise<M>, pick: (m: M) => Component): Component => defineAsyncComponent(async () => pick(await load()));
const services = () => import('@kong-ui-public/entities-gateway-services');
const routes = () => import('@kong-ui-public/entities-routes');
const consumers = () => import('@kong-ui-public/entities-consumers');
const groups = () => import('@kong-ui-public/entities-consumer-groups');
const upstreams = () => import('@kong-ui-public/entities-upstreams-targets');
const certificates = () => import('@kong-ui-public/entities-certificates');
const snis = () => import('@kong-ui-public/entities-snis');

export interface EntityKind {
  /** Route-name prefix (Kong Manager's): service, route, consumer, ... */
  key: string;
  /** Admin API collection. */
  path: string;
  title: string;
  titlePlural: string;
  list: Component;
  form: Component;
  /** Form prop carrying the id being edited. */
  formIdProp: string;
  card: Component | null;
  /** Extra props for the form (e.g. the certificate form's SNI field). */
  formProps?: Record<string, unknown>;
  /** Detail-page tabs beyond Configuration: [title, child route name suffix]. */
  tabs?: Array<[string, string]>;
  /** The name shown for a row. */
  label(row: Record<string, any>): string;
}

const byName = (row: Record<string, any>) => String(row.name ?? row.id ?? '');

export const entityKinds: EntityKind[] = [
  { key: 'service', path: 'services', title: 'Gateway Service', titlePlural: 'Gateway Services', list: lazy(services, (m) => m.GatewayServiceList), form: lazy(services, (m) => m.GatewayServiceForm), formIdProp: 'gatewayServiceId', card: lazy(services, (m) => m.GatewayServiceConfigCard), formProps: { hideTrySampleApiButton: true, isTlsSansSupported: false }, tabs: [['Routes', 'routes'], ['Plugins', 'plugins']], label: byName },
  { key: 'route', path: 'routes', title: 'Route', titlePlural: 'Routes', list: lazy(routes, (m) => m.RouteList), form: lazy(routes, (m) => m.RouteForm), formIdProp: 'routeId', card: lazy(routes, (m) => m.RouteConfigCard), tabs: [['Plugins', 'plugins']], label: byName },
  { key: 'consumer', path: 'consumers', title: 'Consumer', titlePlural: 'Consumers', list: lazy(consumers, (m) => m.ConsumerList), form: lazy(consumers, (m) => m.ConsumerForm), formIdProp: 'consumerId', card: lazy(consumers, (m) => m.ConsumerConfigCard), tabs: [['Credentials', 'credentials'], ['Consumer Groups', 'groups'], ['Plugins', 'plugins']], label: (r) => String(r.username ?? r.custom_id ?? r.id) },
  { key: 'consumer_group', path: 'consumer_groups', title: 'Consumer Group', titlePlural: 'Consumer Groups', list: lazy(groups, (m) => m.ConsumerGroupList), form: lazy(groups, (m) => m.ConsumerGroupForm), formIdProp: 'consumerGroupId', card: lazy(groups, (m) => m.ConsumerGroupConfigCard), tabs: [['Consumers', 'consumers']], label: byName },
  { key: 'upstream', path: 'upstreams', title: 'Upstream', titlePlural: 'Upstreams', list: lazy(upstreams, (m) => m.UpstreamsList), form: lazy(upstreams, (m) => m.UpstreamsForm), formIdProp: 'upstreamId', card: lazy(upstreams, (m) => m.UpstreamsConfigCard), tabs: [['Targets', 'targets']], label: byName },
  { key: 'certificate', path: 'certificates', title: 'Certificate', titlePlural: 'Certificates', list: lazy(certificates, (m) => m.CertificateList), form: lazy(certificates, (m) => m.CertificateForm), formIdProp: 'certificateId', card: lazy(certificates, (m) => m.CertificateConfigCard), formProps: { showSnisField: true }, label: (r) => String(r.id) },
  { key: 'ca-certificate', path: 'ca_certificates', title: 'CA Certificate', titlePlural: 'CA Certificates', list: lazy(certificates, (m) => m.CACertificateList), form: lazy(certificates, (m) => m.CACertificateForm), formIdProp: 'certificateId', card: lazy(certificates, (m) => m.CACertificateConfigCard), label: (r) => String(r.id) },
  { key: 'sni', path: 'snis', title: 'SNI', titlePlural: 'SNIs', list: lazy(snis, (m) => m.SniList), form: lazy(snis, (m) => m.SniForm), formIdProp: 'sniId', card: null, label: byName },
];

export function entityKind(key: string): EntityKind {
  const kind = entityKinds.find((k) => k.key === key);
  if (!kind) throw new Error(`unknown entity kind ${key}`);
  return kind;
}
