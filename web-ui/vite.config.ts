import { Agent } from 'node:https';
import { defineConfig } from 'vitest/config';
import preact from '@preact/preset-vite';

// The console is served by `cairn-vault serve --http` at `/`, the API at
// `/api/v1` on the same origin. For development (`npm run dev`) or to try
// the built files (`npm run build && npm run preview`), point CAIRN_VAULT at
// a running vault's HTTPS listener; it uses its own certificate, hence
// secure: false:
//   CAIRN_VAULT=https://127.0.0.1:20443 npm run dev   # then open http://localhost:5173
const vault = process.env.CAIRN_VAULT ?? 'https://127.0.0.1:8443';

const proxy = {
  '/api': {
    target: vault,
    changeOrigin: false,
    secure: false,
    // No TLS session reuse towards the vault: its listener refuses resumed
    // sessions (see README, "Known vault issues").
    agent: new Agent({ keepAlive: true, maxCachedSessions: 0 }),
  },
};

export default defineConfig({
  plugins: [preact({ prerender: { enabled: false } })],
  // Relative asset URLs: the vault serves index.html at `/`.
  base: './',
  build: {
    outDir: 'dist',
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: { host: 'localhost', port: 5173, strictPort: true, proxy },
  preview: { host: 'localhost', port: 4173, strictPort: true, proxy },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
