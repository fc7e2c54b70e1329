/**
 * Shared by the PostgreSQL benchmarks: a fresh database on `DATABASE_URL`'s
 * server (dropped at the end), drizzle over postgres.js, small statistics.
 */
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { z } from 'zod';
import { defineCatalog, defineEvent } from '@blawby/event-bus';
import type { DrizzleDatabase } from '@blawby/event-bus/postgres';

export const catalog = defineCatalog({
  'bench.item_created': defineEvent({
    version: '1.0.0',
    payload: z.object({ n: z.number().int(), email: z.string(), name: z.string() }),
  }),
});

export const payload = (n: number) => ({ n, email: `user${n}@example.com`, name: 'A. Person' });

export interface BenchDatabase {
  url: string;
  /** A pooled client (`max` connections) and drizzle over it. */
  sql: postgres.Sql;
  db: DrizzleDatabase;
  /** Another client with its own pool. */
  client(max: number): { sql: postgres.Sql; db: DrizzleDatabase };
  drop(): Promise<void>;
}

export async function createBenchDatabase(max = 10): Promise<BenchDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    process.stderr.write('DATABASE_URL is not set: the PostgreSQL benchmarks need a server\n');
    process.exit(2);
  }
  const name = `eb_bench_${randomBytes(5).toString('hex')}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const clients: postgres.Sql[] = [];
  const client = (n: number) => {
    const sql = postgres(url.toString(), { max: n, onnotice: () => {} });
    clients.push(sql);
    return { sql, db: drizzle(sql) as unknown as DrizzleDatabase };
  };
  const main = client(max);
  return {
    url: url.toString(),
    ...main,
    client,
    async drop() {
      await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
      const a = postgres(base, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export function rate(perSecond: number): string {
  return perSecond >= 1000 ? `${(perSecond / 1000).toFixed(2)} k/s` : `${perSecond.toFixed(0)} /s`;
}

export function ratio(ours: number, theirs: number): string {
  return `${(ours / theirs).toFixed(2)}×`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
