import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@blawby\/event-bus\/testing$/, replacement: here('./src/testing/index.ts') },
      { find: /^@blawby\/event-bus\/postgres$/, replacement: here('./adapters/postgres/index.ts') },
      { find: /^@blawby\/event-bus\/redis$/, replacement: here('./adapters/redis/index.ts') },
      { find: /^@blawby\/event-bus\/fastify$/, replacement: here('./adapters/fastify/index.ts') },
      { find: /^@blawby\/event-bus\/express$/, replacement: here('./adapters/express/index.ts') },
      { find: /^@blawby\/event-bus\/hono$/, replacement: here('./adapters/hono/index.ts') },
      { find: /^@blawby\/event-bus\/nats$/, replacement: here('./adapters/nats/index.ts') },
      { find: /^@blawby\/event-bus\/prometheus$/, replacement: here('./adapters/prometheus/index.ts') },
      { find: /^@blawby\/event-bus\/opentelemetry$/, replacement: here('./adapters/opentelemetry/index.ts') },
      { find: /^@blawby\/event-bus$/, replacement: here('./src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'adapters/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
    globalSetup: ['./test/setup/global-setup.ts'],
    setupFiles: ['./test/setup/leak-guard.ts', './test/setup/quiet-warnings.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One file at a time: the PostgreSQL suites share one server, and its log is read only
    // below the oldest running transaction of the whole cluster, so one file's migration or
    // held transaction would stall another file's reads (see docs/postgres.md, "The log").
    fileParallelism: false,
  },
});
