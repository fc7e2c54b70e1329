/**
 * The bus's side of the observation seam (src/bus/observation.ts): the set of
 * observers, and the middleware stacks with the chains that run them. Each
 * keeps a plain array replaced on change, so an emission or a run reads one
 * field and never sees the list change under it.
 */
import type { Catalog } from '../catalog';
import type { BaseEvent } from '../envelope';
import { InvalidOptionError } from '../errors';
import type { BusObserver, HandlerMiddleware, PublishContext, PublishMiddleware } from './observation';
import type { HandlerContext } from './types';

type ObserverMethod = keyof BusObserver;
type ObservationOf<K extends ObserverMethod> = Parameters<NonNullable<BusObserver[K]>>[0];

const OBSERVER_METHODS: readonly ObserverMethod[] = [
  'published',
  'deliveryStarted',
  'deliverySettled',
  'retryScheduled',
  'deadLettered',
  'leaseLost',
];

/** Adds `item` to a copy-on-write list; returns the function that removes it (once). */
function addTo<T>(read: () => readonly T[], write: (list: readonly T[]) => void, item: T): () => void {
  write([...read(), item]);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    const list = read();
    const at = list.indexOf(item);
    if (at >= 0) write([...list.slice(0, at), ...list.slice(at + 1)]);
  };
}

/** The observers of one bus. */
export class ObserverSet {
  /** At least one observer is registered: the one check on the hot path before building an observation. */
  active = false;
  private list: readonly BusObserver[] = [];

  constructor(private readonly report: (error: unknown, during: string) => void) {}

  add(observer: BusObserver): () => void {
    if (typeof observer !== 'object' || observer === null) {
      throw new InvalidOptionError('observer', 'must be an object with observer methods (published, deliverySettled, ...)');
    }
    for (const key of Object.keys(observer)) {
      const method = (observer as Record<string, unknown>)[key];
      if (OBSERVER_METHODS.includes(key as ObserverMethod) && method !== undefined && typeof method !== 'function') {
        throw new InvalidOptionError('observer', `"${key}" must be a function`);
      }
    }
    return addTo(
      () => this.list,
      (list) => {
        this.list = list;
        this.active = list.length > 0;
      },
      observer,
    );
  }

  /** Tells every observer with method `key`; an observer's failure is reported and goes no further. */
  emit<K extends ObserverMethod>(key: K, observation: ObservationOf<K>): void {
    for (const observer of this.list) {
      const method = observer[key] as ((o: ObservationOf<K>) => void) | undefined;
      if (method === undefined) continue;
      try {
        method.call(observer, observation);
      } catch (err) {
        this.report(err, `observer ${key}`);
      }
    }
  }
}

/** An ordered list of middleware; the first is the outermost. */
export class MiddlewareStack<M extends (...args: never[]) => Promise<void>> {
  list: readonly M[] = [];

  constructor(private readonly option: string) {}

  add(middleware: M): () => void {
    if (typeof middleware !== 'function') throw new InvalidOptionError(this.option, 'must be a function');
    return addTo(
      () => this.list,
      (list) => void (this.list = list),
      middleware,
    );
  }
}

function calledTwice(option: string): InvalidOptionError {
  return new InvalidOptionError(option, 'a middleware called next() more than once');
}

/** Runs `handler` inside the handler middleware `list`. */
export function runHandlerChain(
  list: readonly HandlerMiddleware[],
  handler: (event: BaseEvent, ctx: HandlerContext<Catalog>) => Promise<void> | void,
  event: BaseEvent,
  ctx: HandlerContext<Catalog>,
): Promise<void> {
  let reached = -1;
  const step = async (i: number): Promise<void> => {
    if (i <= reached) throw calledTwice('middleware');
    reached = i;
    if (i === list.length) return handler(event, ctx);
    return list[i]!(event, ctx, () => step(i + 1));
  };
  return step(0);
}

/** Runs `store` inside the publish middleware `list`; rejects when a middleware never reached it. */
export async function runPublishChain<R>(
  list: readonly PublishMiddleware[],
  publish: PublishContext,
  store: () => Promise<R>,
): Promise<R> {
  let reached = -1;
  let stored: { result: R } | undefined;
  const step = async (i: number): Promise<void> => {
    if (i <= reached) throw calledTwice('publishMiddleware');
    reached = i;
    if (i === list.length) {
      stored = { result: await store() };
      return;
    }
    return list[i]!(publish, () => step(i + 1));
  };
  await step(0);
  if (!stored) throw new InvalidOptionError('publishMiddleware', 'a middleware returned without calling next(): nothing was stored');
  return stored.result;
}
