import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/** The web UI: built into dist/web, which the server serves at `/` (src/http/plugins/web-ui.ts). */
export default defineConfig(({ command }) => {
  // A build is always the production one, whatever NODE_ENV the caller has (vitest sets "test"):
  // React's production build and JSX runtime.
  if (command === 'build') process.env.NODE_ENV = 'production';
  return config(command);
});

const config = (command: string) => ({
  root,
  base: '/',
  plugins: [react()],
  logLevel: 'warn',
  define: command === 'build' ? { 'process.env.NODE_ENV': JSON.stringify('production') } : {},
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    // Every browser the UI targets supports modulepreload.
    modulePreload: { polyfill: false },
  },
  server: {
    // `npx vite --config web/vite.config.ts` against a running `vizdex serve` on :8080.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
