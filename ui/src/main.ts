import { createApp } from 'vue';
import Kongponents from '@kong/kongponents';
import { FORMS_API_KEY, VueFormGenerator } from '@kong-ui-public/forms';
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
app.component('VueFormGenerator', VueFormGenerator);
// The schema-driven forms look up foreign entities (e.g. a plugin's service) through this.
app.provide(FORMS_API_KEY, {
  getOne: (entity: string, id: string) => api.get(`/${entity}/${encodeURIComponent(id)}`),
  getAll: (entity: string, params: Record<string, string | number>) => api.get(`/${entity}`, { params }),
});
app.mount('#app');
