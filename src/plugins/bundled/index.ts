/** Every plugin bundled with Portcullis. Add new plugins here. */
import type { PluginDefinition } from '../sdk.ts';

export const bundledPlugins: readonly PluginDefinition[] = [];
