/**
 * Type-level behaviour of the adapters' declaration merging, compiled in a
 * program of its own: an `EventBusRegistry` augmentation would otherwise
 * leak into the whole repository's program (it is global by nature).
 * Each fixture compiles clean only if every `@ts-expect-error` line is an error
 * (an unused one is itself an error) and nothing else is.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../..');
// Under node_modules so that no repository-wide `tsc -p .` ever sees these files.
const dir = join(root, 'node_modules', '.cache', `event-bus-registry-types-${process.pid}`);

const header = `
import Fastify from 'fastify';
import express from 'express';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent } from '@blawby/event-bus';
import { eventBusPlugin } from '@blawby/event-bus/fastify';
import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/express';
import { Hono } from 'hono';
import * as hono from '@blawby/event-bus/hono';

export const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
});
const other = defineCatalog({ 'x.thing_happened': defineEvent({ version: '1.0.0', payload: z.object({}) }) });
`;

const augmented = `${header}
declare module '@blawby/event-bus/fastify' {
  interface EventBusRegistry {
    catalog: typeof catalog;
  }
}

export async function fastifyApp() {
  const bus = createEventBus({ catalog });
  const app = Fastify();
  await app.register(eventBusPlugin, { bus, routes: { health: true } });
  // @ts-expect-error a bus of another catalog than the registered one
  await app.register(eventBusPlugin, { bus: createEventBus({ catalog: other }) });
  app.get('/', async (request) => {
    const event = await request.events.publish('auth.user_signed_up', { email: 'a@b.co' }, { actor: 'u' });
    const email: string = event.payload.email;
    // @ts-expect-error not in the catalog
    await request.events.publish('auth.user_teleported', {});
    // @ts-expect-error payload of the wrong shape
    await request.events.publish('auth.user_signed_up', { email: 42 });
    const again = await app.events.publish('auth.user_signed_up', { email });
    return again.eventId;
  });
}

export function expressApp() {
  const bus = createEventBus({ catalog });
  const app = express();
  app.use(eventBusMiddleware(bus));
  app.use('/events', eventBusRouter(bus, { authorize: () => null }));
  app.get('/', async (req, res) => {
    // The Express adapter reads the same registry.
    const event = await req.events.publish('auth.user_signed_up', { email: 'a@b.co' });
    // @ts-expect-error not in the catalog
    await req.events.publish('auth.user_teleported', {});
    res.json({ id: event.eventId });
  });
}

export function honoApp() {
  const bus = createEventBus({ catalog });
  const app = new Hono();
  app.use(hono.eventBusMiddleware(bus));
  app.route('/events', hono.eventBusRouter(bus, { authorize: () => null }));
  // The registry types c.var.events in every Hono context, with no Env on the app.
  app.get('/', async (c) => {
    const event = await c.var.events.publish('auth.user_signed_up', { email: 'a@b.co' });
    // @ts-expect-error not in the catalog
    await c.var.events.publish('auth.user_teleported', {});
    // @ts-expect-error payload of the wrong shape
    await c.get('events').publish('auth.user_signed_up', { email: 42 });
    return c.text(event.payload.email);
  });
}
`;

const plain = `${header}
export async function withoutRegistry() {
  const bus = createEventBus({ catalog });
  const app = Fastify();
  // A typed bus is accepted as is when nothing is registered.
  await app.register(eventBusPlugin, { bus });
  app.get('/', async (request) => {
    await request.events.publish('anything.at_all', { free: true });
  });
  const router = eventBusRouter(bus);
  await router.close();
  // Nothing registered: c.var.events is unknown until the app's Env names a catalog.
  const plainHono = new Hono();
  plainHono.use(hono.eventBusMiddleware(bus));
  plainHono.get('/', (c) => {
    // @ts-expect-error unknown without an Env
    void c.var.events.metadata;
    return c.text('ok');
  });
  const typedHono = new Hono<hono.EventBusEnv<typeof catalog>>();
  typedHono.use(hono.eventBusMiddleware(bus));
  typedHono.get('/', async (c) => {
    const event = await c.var.events.publish('auth.user_signed_up', { email: 'a@b.co' });
    // @ts-expect-error payload of the wrong shape
    await c.var.events.publish('auth.user_signed_up', { email: 42 });
    return c.text(event.payload.email);
  });
  // @ts-expect-error the bus is required
  await app.register(eventBusPlugin, {});
}
`;

const parsedFiles = new Map<string, ts.SourceFile | undefined>();

/** A compiler host that parses each library file once for both programs. */
function host(options: ts.CompilerOptions): ts.CompilerHost {
  const base = ts.createCompilerHost(options);
  return {
    ...base,
    getSourceFile(fileName, languageVersion, onError) {
      if (fileName.startsWith(dir)) return base.getSourceFile(fileName, languageVersion, onError);
      if (!parsedFiles.has(fileName)) parsedFiles.set(fileName, base.getSourceFile(fileName, languageVersion, onError));
      return parsedFiles.get(fileName);
    },
  };
}

function diagnostics(file: string, source: string): string[] {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, source);
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    baseUrl: root,
    paths: {
      '@blawby/event-bus': [join(root, 'src/index.ts')],
      '@blawby/event-bus/fastify': [join(root, 'adapters/fastify/index.ts')],
      '@blawby/event-bus/express': [join(root, 'adapters/express/index.ts')],
      '@blawby/event-bus/hono': [join(root, 'adapters/hono/index.ts')],
    },
  };
  const program = ts.createProgram([path], options, host(options));
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === path || d.file === undefined)
    .map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return `${file}:${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

describe('EventBusRegistry declaration merging', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('types fastify.events, request.events, req.events and c.var.events with the registered catalog', () => {
    expect(diagnostics('augmented.ts', augmented)).toEqual([]);
  }, 120_000);

  it('accepts any event type, and a typed bus without a cast, when nothing is registered', () => {
    expect(diagnostics('plain.ts', plain)).toEqual([]);
  }, 120_000);
});
