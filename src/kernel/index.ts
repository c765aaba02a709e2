/** The kernel's door. */
export { startSingle, startPrimary, runWorker, type RunningNode } from './node.ts';
export { readSettings, settingDocs, SettingsError, type Settings, type Flags } from './settings.ts';
export { ProxyRuntime } from './runtime.ts';
export { ControlPlane, version } from './control.ts';
