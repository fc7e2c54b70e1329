import { describe, expectTypeOf, it } from 'vitest';
import {
  EventBusError,
  type HandlerTimeoutError,
  type InvalidOptionError,
  type EventValidationError,
  type RetryAfterError,
} from '../../src/index';

declare const err: unknown;

describe('EventBusError.is', () => {
  it('narrows to the class of the code, so its fields type-check', () => {
    if (EventBusError.is(err, 'EVENT_VALIDATION_FAILED')) {
      expectTypeOf(err).toEqualTypeOf<EventValidationError>();
      expectTypeOf(err.issues[0]!.path).toEqualTypeOf<PropertyKey[]>();
      expectTypeOf(err.eventType).toEqualTypeOf<string>();
    }
    if (EventBusError.is(err, 'INVALID_OPTION')) expectTypeOf(err).toEqualTypeOf<InvalidOptionError>();
    if (EventBusError.is(err, 'RETRY_AFTER')) expectTypeOf(err.delayMs).toEqualTypeOf<number>();
    if (EventBusError.is(err, 'HANDLER_TIMEOUT')) expectTypeOf(err).toEqualTypeOf<HandlerTimeoutError>();
  });

  it('narrows a code without a class of its own to EventBusError with that code', () => {
    if (EventBusError.is(err, 'BUS_STOPPED')) {
      expectTypeOf(err).toMatchTypeOf<EventBusError>();
      expectTypeOf(err.code).toEqualTypeOf<'BUS_STOPPED'>();
      // @ts-expect-error a plain EventBusError has no issues
      void err.issues;
    }
    if (EventBusError.is(err)) expectTypeOf(err).toEqualTypeOf<EventBusError>();
  });

  it('refuses a code that does not exist', () => {
    // @ts-expect-error not an ErrorCode
    EventBusError.is(err, 'NO_SUCH_CODE');
    expectTypeOf<RetryAfterError['code']>().toEqualTypeOf<EventBusError['code']>();
  });
});
