import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// Relative base: the gateway serves the UI under PORTCULLIS_ADMIN_GUI_PATH and writes a matching
// <base href> into index.html, so one build works under any path.
export default defineConfig({
  base: './',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8000,
    reportCompressedSize: false,
  },
});
