/**
 * The entity kinds with list/create/edit/detail pages, and which Kong UI package component shows
 * each page. One table, so that adding a kind is one entry (the generic pages in pages/entity/
 * read it). Route names follow Kong Manager's (`service-detail`, ...) because the packages'
 * cross-links (a plugin's scope, a certificate's SNIs) ask for them by name.
 */
import type { Component } from 'vue';
import { GatewayServiceConfigCard, GatewayServiceForm, GatewayServiceList } from '@kong-ui-public/entities-gateway-services';
import { RouteConfigCard, RouteForm, RouteList } from '@kong-ui-public/entities-routes';
import { ConsumerConfigCard, ConsumerForm, ConsumerList } from '@kong-ui-public/entities-consumers';
import { ConsumerGroupConfigCard, ConsumerGroupForm, ConsumerGroupList } from '@kong-ui-public/entities-consumer-groups';
import { UpstreamsConfigCard, UpstreamsForm, UpstreamsList } from '@kong-ui-public/entities-upstreams-targets';
import { CACertificateConfigCard, CACertificateForm, CACertificateList, CertificateConfigCard, CertificateForm, CertificateList } from '@kong-ui-public/entities-certificates';
import { SniForm, SniList } from '@kong-ui-public/entities-snis';

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
  { key: 'service', path: 'services', title: 'Gateway Service', titlePlural: 'Gateway Services', list: GatewayServiceList, form: GatewayServiceForm, formIdProp: 'gatewayServiceId', card: GatewayServiceConfigCard, formProps: { hideTrySampleApiButton: true, isTlsSansSupported: false }, tabs: [['Routes', 'routes'], ['Plugins', 'plugins']], label: byName },
  { key: 'route', path: 'routes', title: 'Route', titlePlural: 'Routes', list: RouteList, form: RouteForm, formIdProp: 'routeId', card: RouteConfigCard, tabs: [['Plugins', 'plugins']], label: byName },
  { key: 'consumer', path: 'consumers', title: 'Consumer', titlePlural: 'Consumers', list: ConsumerList, form: ConsumerForm, formIdProp: 'consumerId', card: ConsumerConfigCard, tabs: [['Credentials', 'credentials'], ['Consumer Groups', 'groups'], ['Plugins', 'plugins']], label: (r) => String(r.username ?? r.custom_id ?? r.id) },
  { key: 'consumer_group', path: 'consumer_groups', title: 'Consumer Group', titlePlural: 'Consumer Groups', list: ConsumerGroupList, form: ConsumerGroupForm, formIdProp: 'consumerGroupId', card: ConsumerGroupConfigCard, tabs: [['Consumers', 'consumers']], label: byName },
  { key: 'upstream', path: 'upstreams', title: 'Upstream', titlePlural: 'Upstreams', list: UpstreamsList, form: UpstreamsForm, formIdProp: 'upstreamId', card: UpstreamsConfigCard, tabs: [['Targets', 'targets']], label: byName },
  { key: 'certificate', path: 'certificates', title: 'Certificate', titlePlural: 'Certificates', list: CertificateList, form: CertificateForm, formIdProp: 'certificateId', card: CertificateConfigCard, formProps: { showSnisField: true }, label: (r) => String(r.id) },
  { key: 'ca-certificate', path: 'ca_certificates', title: 'CA Certificate', titlePlural: 'CA Certificates', list: CACertificateList, form: CACertificateForm, formIdProp: 'certificateId', card: CACertificateConfigCard, label: (r) => String(r.id) },
  { key: 'sni', path: 'snis', title: 'SNI', titlePlural: 'SNIs', list: SniList, form: SniForm, formIdProp: 'sniId', card: null, label: byName },
];

export function entityKind(key: string): EntityKind {
  const kind = entityKinds.find((k) => k.key === key);
  if (!kind) throw new Error(`unknown entity kind ${key}`);
  return kind;
}
