import { createApp } from 'vue';
import Kongponents from '@kong/kongponents';
import App from './App.vue';
import { router } from './router.ts';
import { api, createAdminAxios } from './session.ts';
import './styles.ts';
import './monaco-workers.ts';

const app = createApp(App);
app.use(Kongponents);
app.use(router);
// Every Kong UI package asks @kong-ui-public/core for its HTTP client through this injection.
app.provide('get-axios-instance', createAdminAxios);
// The schema-driven forms (@kong-ui-public/forms' FORMS_API_KEY) look up foreign entities (e.g. a
// plugin's service) through this.
app.provide('kong-ui-forms-api', {
  getOne: (entity: string, id: string) => api.get(`/${entity}/${encodeURIComponent(id)}`),
  getAll: (entity: string, params: Record<string, string | number>) => api.get(`/${entity}`, { params }),
});
// The schema-driven form generator is loaded with the first page that has a plugin form.
let forms: Promise<void> | null = null;
router.beforeEach(async (to) => {
  if (!/^(plugin|consumer-credential)-/.test(String(to.name ?? ''))) return;
  forms ??= import('@kong-ui-public/forms').then(({ VueFormGenerator }) => {
    app.component('VueFormGenerator', VueFormGenerator);
  });
  await forms;
});
app.mount('#app');
