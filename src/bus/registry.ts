/** The subscriber registry: named handlers of this process and their policies. */
import type { Catalog } from '../catalog';
import { EventBusError, InvalidOptionError, UnknownEventTypeError } from '../errors';
import type { SubscriberRegistration } from '../ports/storage';
import type { ResolvedRetryPolicy } from './backoff';
import { resolveRetry, resolveTimeout } from './options';
import type { HandlerContext, SubscribeOptions } from './types';

/** A registered subscriber of this process. */
export interface Subscription {
  name: string;
  patterns: readonly string[];
  handler: (event: never, ctx: HandlerContext<Catalog>) => Promise<void> | void;
  retry: ResolvedRetryPolicy;
  concurrency: number;
  transactional: boolean;
  /** Longest one attempt of its handler may run. */
  timeoutMs: number;
  /** Its handlers running now in this process. */
  inFlight: number;
  /** Its deliveries claimed ahead, waiting in this process for a slot. */
  queued: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

/** Holds the subscriptions; checks names and patterns against the catalog. */
export class SubscriberRegistry {
  private readonly byName = new Map<string, Subscription>();
  /** Changes whenever a subscription is added or removed. */
  version = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly defaultRetry: ResolvedRetryPolicy,
    private readonly defaultConcurrency: number,
    private readonly defaultTimeoutMs: number,
  ) {}

  add(pattern: string | readonly string[], handler: Subscription['handler'], options: SubscribeOptions): Subscription {
    if (typeof options !== 'object' || options === null || typeof options.name !== 'string') {
      throw new InvalidOptionError('name', 'every subscriber needs a unique `name` (delivery state is kept per name)');
    }
    const { name } = options;
    if (!NAME.test(name)) {
      throw new InvalidOptionError('name', 'use 1-100 characters of letters, digits, ".", "_", ":" or "-"');
    }
    if (this.byName.has(name)) {
      throw new EventBusError('DUPLICATE_SUBSCRIBER', `A subscriber named "${name}" is already registered`);
    }
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', 'must be a function');
    const patterns = typeof pattern === 'string' ? [pattern] : [...pattern];
    if (patterns.length === 0) throw new InvalidOptionError('pattern', 'must name at least one event type');
    for (const p of patterns) this.checkPattern(p);
    if (options.transactional !== undefined && typeof options.transactional !== 'boolean') {
      throw new InvalidOptionError('transactional', 'must be a boolean');
    }
    const concurrency = options.concurrency ?? this.defaultConcurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidOptionError('concurrency', 'must be an integer >= 1');
    }
    const subscription: Subscription = {
      name,
      patterns,
      handler,
      retry: resolveRetry(options.retry, this.defaultRetry, 'retry'),
      concurrency,
      transactional: options.transactional ?? false,
      timeoutMs: resolveTimeout('timeoutMs', options.timeoutMs, this.defaultTimeoutMs),
      inFlight: 0,
      queued: 0,
    };
    this.byName.set(name, subscription);
    this.version += 1;
    return subscription;
  }

  remove(subscription: Subscription): void {
    if (this.byName.get(subscription.name) === subscription) {
      this.byName.delete(subscription.name);
      this.version += 1;
    }
  }

  get(name: string): Subscription | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.byName.size;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): IterableIterator<Subscription> {
    return this.byName.values();
  }

  registrations(): SubscriberRegistration[] {
    return [...this.byName.values()].map((s) => ({ name: s.name, patterns: s.patterns }));
  }

  private checkPattern(pattern: unknown): void {
    if (typeof pattern !== 'string') throw new InvalidOptionError('pattern', 'must be a string');
    if (pattern === '*') return;
    if (pattern.endsWith('.*')) {
      const prefix = pattern.slice(0, -1);
      if (!Object.keys(this.catalog).some((type) => type.startsWith(prefix))) {
        throw new InvalidOptionError('pattern', `no event type of the catalog matches "${pattern}"`);
      }
      return;
    }
    if (!Object.hasOwn(this.catalog, pattern)) throw new UnknownEventTypeError(pattern);
  }
}
