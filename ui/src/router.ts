import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { config } from './config.ts';
import { session } from './session.ts';
import { entityKinds } from './entities.ts';
import EntityList from './pages/entity/EntityList.vue';
import EntityForm from './pages/entity/EntityForm.vue';
import EntityDetail from './pages/entity/EntityDetail.vue';
const PluginListPage = () => import('./pages/plugins/PluginListPage.vue');

const routes: RouteRecordRaw[] = [
  { name: 'overview', path: '/', component: () => import('./pages/Overview.vue'), meta: { title: 'Overview' } },
  { name: 'plugin-list', path: '/plugins', component: PluginListPage, meta: { entity: 'plugin', title: 'Plugins' } },
  { name: 'plugin-select', path: '/plugins/select', component: () => import('./pages/plugins/PluginSelectPage.vue'), meta: { entity: 'plugin', title: 'Add Plugin' } },
  { name: 'plugin-create', path: '/plugins/:pluginType/create', component: () => import('./pages/plugins/PluginFormPage.vue'), meta: { entity: 'plugin', title: 'New Plugin' } },
  { name: 'plugin-edit', path: '/plugins/:pluginType/:id/edit', component: () => import('./pages/plugins/PluginFormPage.vue'), meta: { entity: 'plugin', title: 'Edit Plugin' } },
  { name: 'plugin-detail', path: '/plugins/:pluginType/:id', component: () => import('./pages/plugins/PluginDetailPage.vue'), meta: { entity: 'plugin', title: 'Plugin' } },
  { name: 'consumer-credential-create', path: '/consumers/:id/credentials/:pluginType/create', component: () => import('./pages/consumers/CredentialFormPage.vue'), meta: { entity: 'consumer', title: 'New Credential' } },
  { name: 'consumer-credential-edit', path: '/consumers/:id/credentials/:pluginType/:credentialId/edit', component: () => import('./pages/consumers/CredentialFormPage.vue'), meta: { entity: 'consumer', title: 'Edit Credential' } },
  { name: 'issuer-list', path: '/issuers', component: () => import('./pages/issuers/IssuerList.vue'), meta: { entity: 'issuer', title: 'Issuers' } },
  { name: 'issuer-detail', path: '/issuers/:id(.*)', component: () => import('./pages/issuers/IssuerDetail.vue'), meta: { entity: 'issuer', title: 'Issuer' } },
];

/** The child pages (tabs) of each kind's detail page. */
const tabPages: Record<string, RouteRecordRaw[]> = {
  service: [
    { name: 'service-detail-routes', path: 'routes', component: EntityList, props: { kindKey: 'route' }, meta: { entity: 'service', scopedIn: 'services' } },
    { name: 'service-detail-plugins', path: 'plugins', component: PluginListPage, meta: { entity: 'service', scopedIn: 'services' } },
  ],
  route: [
    { name: 'route-detail-plugins', path: 'plugins', component: PluginListPage, meta: { entity: 'route', scopedIn: 'routes' } },
  ],
  consumer: [
    { name: 'consumer-detail-credentials', path: 'credentials', component: () => import('./pages/consumers/ConsumerCredentials.vue'), meta: { entity: 'consumer' } },
    { name: 'consumer-detail-groups', path: 'groups', component: EntityList, props: { kindKey: 'consumer_group' }, meta: { entity: 'consumer', scopedIn: 'consumers' } },
    { name: 'consumer-detail-plugins', path: 'plugins', component: PluginListPage, meta: { entity: 'consumer', scopedIn: 'consumers' } },
  ],
  consumer_group: [
    { name: 'consumer_group-detail-consumers', path: 'consumers', component: EntityList, props: { kindKey: 'consumer' }, meta: { entity: 'consumer_group', scopedIn: 'consumer_groups' } },
  ],
  upstream: [
    { name: 'upstream-detail-targets', path: 'targets', component: () => import('./pages/upstreams/UpstreamTargets.vue'), meta: { entity: 'upstream' } },
  ],
};

for (const kind of entityKinds) {
  const urlBase = `/${kind.path.replace(/_/g, '-')}`;
  const meta = { entity: kind.key };
  routes.push(
    { name: `${kind.key}-list`, path: urlBase, component: EntityList, props: { kindKey: kind.key }, meta: { ...meta, title: kind.titlePlural } },
    { name: `${kind.key}-create`, path: `${urlBase}/create`, component: EntityForm, props: { kindKey: kind.key }, meta: { ...meta, title: `Create ${kind.title}` } },
    { name: `${kind.key}-edit`, path: `${urlBase}/:id/edit`, component: EntityForm, props: { kindKey: kind.key }, meta: { ...meta, title: `Edit ${kind.title}` } },
    { name: `${kind.key}-detail`, path: `${urlBase}/:id`, component: EntityDetail, props: { kindKey: kind.key }, meta: { ...meta, title: kind.title }, children: tabPages[kind.key] ?? [] },
  );
}
routes.push({ name: 'not-found', path: '/:pathMatch(.*)*', component: () => import('./pages/NotFound.vue'), meta: { title: 'Not Found' } });

export const router = createRouter({
  history: createWebHistory(`${config.guiPath}/`),
  routes,
});

// A page's code that cannot be fetched means the gateway (which serves the UI too) is gone.
router.onError((err: unknown) => {
  if (/dynamically imported module|Importing a module script failed|Failed to fetch/i.test(String((err as Error)?.message ?? err))) session.apiDown = true;
});

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? '')} | Portcullis Manager`;
});
