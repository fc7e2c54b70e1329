import { describe, expectTypeOf, it } from 'vitest';
import type { catalog } from './fixtures';
import type { EventBus } from '../../src/bus/types';
import type {
  BusObserver,
  DeliveryOutcomeKind,
  DeliverySettledObservation,
  HandlerMiddleware,
  PublishContext,
  PublishMiddleware,
} from '../../src/bus/observation';
import type { ErrorInfo } from '../../src/errors';

// Type tests are only type-checked, never run: a declared bus is enough.
declare const bus: EventBus<typeof catalog>;

describe('observe', () => {
  it('takes an object of optional methods and returns its removal', () => {
    expectTypeOf(bus.observe({})).toEqualTypeOf<() => void>();
    bus.observe({ deliverySettled: (o) => expectTypeOf(o).toEqualTypeOf<DeliverySettledObservation>() });
    // @ts-expect-error a method must be a function
    bus.observe({ published: true });
    // @ts-expect-error a function is not an observer
    bus.observe(() => undefined);
  });

  it('types each observation', () => {
    const observer: BusObserver = {
      published: ({ event, inTransaction }) => {
        expectTypeOf(event.eventId).toEqualTypeOf<string>();
        expectTypeOf(inTransaction).toEqualTypeOf<boolean>();
      },
      deliveryStarted: ({ startedAt, attempt }) => {
        expectTypeOf(startedAt).toEqualTypeOf<Date>();
        expectTypeOf(attempt).toEqualTypeOf<number>();
      },
      deliverySettled: ({ outcome, error, retryAt, durationMs }) => {
        expectTypeOf(outcome).toEqualTypeOf<DeliveryOutcomeKind>();
        expectTypeOf(error).toEqualTypeOf<ErrorInfo | undefined>();
        expectTypeOf(retryAt).toEqualTypeOf<Date | undefined>();
        expectTypeOf(durationMs).toEqualTypeOf<number>();
      },
      retryScheduled: ({ error, retryAt }) => {
        expectTypeOf(error).toEqualTypeOf<ErrorInfo>();
        expectTypeOf(retryAt).toEqualTypeOf<Date>();
      },
      leaseLost: ({ running }) => expectTypeOf(running).toEqualTypeOf<boolean>(),
    };
    bus.observe(observer);
    expectTypeOf<DeliveryOutcomeKind>().toEqualTypeOf<
      'succeeded' | 'retrying' | 'dead-lettered' | 'lease-lost' | 'released' | 'unrecorded'
    >();
  });
});

describe('middleware', () => {
  it('wraps handlers with (event, ctx, next)', () => {
    const mw: HandlerMiddleware = async (event, ctx, next) => {
      expectTypeOf(event.eventType).toEqualTypeOf<string>();
      expectTypeOf(ctx.subscriber).toEqualTypeOf<string>();
      expectTypeOf(next).toEqualTypeOf<() => Promise<void>>();
      await next();
    };
    expectTypeOf(bus.use(mw)).toEqualTypeOf<() => void>();
    // @ts-expect-error middleware returns a promise
    bus.use(() => undefined);
  });

  it('wraps publishes, adding string metadata only', () => {
    const mw: PublishMiddleware = async (publish, next) => {
      expectTypeOf(publish).toEqualTypeOf<PublishContext>();
      publish.setMetadata(publish.events[0]!, { traceparent: '00-...' });
      // @ts-expect-error metadata values are strings
      publish.setMetadata(publish.events[0]!, { retries: 3 });
      await next();
    };
    expectTypeOf(bus.usePublish(mw)).toEqualTypeOf<() => void>();
  });
});
