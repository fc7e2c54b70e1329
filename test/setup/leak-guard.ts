/**
 * Fails a test file that leaves a bus running, whichever way the bus was made
 * (`createEventBus`, `createTestBus`, an adapter, an example app): every bus
 * started in a file must be stopped by the end of it (a test's own cleanup or
 * the file's `afterAll`). Leaked buses are stopped, so their timers do not
 * spill into the next file. (Buses of `testBus()` in test/bus/fixtures.ts are
 * held to the end of each test.)
 *
 * It wraps the dispatcher's `start` and `stop` (every bus has one); it changes
 * nothing else about them.
 */
import { afterAll, expect } from 'vitest';
import { Dispatcher } from '../../src/bus/dispatcher';

const running = new Set<Dispatcher>();

const start = Dispatcher.prototype.start;
const stop = Dispatcher.prototype.stop;
Dispatcher.prototype.start = function (this: Dispatcher, ...args: Parameters<Dispatcher['start']>) {
  running.add(this);
  return start.apply(this, args);
};
Dispatcher.prototype.stop = function (this: Dispatcher, ...args: Parameters<Dispatcher['stop']>) {
  running.delete(this);
  return stop.apply(this, args);
};

// Registered before the file's own hooks, so it runs after the file's afterAll (hooks stack).
afterAll(async () => {
  const leaked = [...running];
  running.clear();
  await Promise.all(leaked.map((d) => stop.call(d, 0)));
  expect(leaked.length, 'this file left a bus running: call bus.stop() (in the test, or in afterAll)').toBe(0);
});
