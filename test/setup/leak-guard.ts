/**
 * Fails a test that leaves a bus running, whichever way the bus was made
 * (`createEventBus`, `createTestBus`, an adapter, an example app). A bus
 * started inside a test (or its `beforeEach`) must be stopped by the end of
 * it; one started in `beforeAll` by the end of the file. Leaked buses are
 * stopped, so one test's leak does not spill into the next.
 *
 * It wraps the dispatcher's `start` and `stop` (every bus has one); it changes
 * nothing else about them.
 */
import { afterAll, afterEach, beforeEach, expect } from 'vitest';
import { Dispatcher } from '../../src/bus/dispatcher';

const inTest = new Set<Dispatcher>();
const inFile = new Set<Dispatcher>();
let testRunning = false;

const start = Dispatcher.prototype.start;
const stop = Dispatcher.prototype.stop;
Dispatcher.prototype.start = function (this: Dispatcher, ...args: Parameters<Dispatcher['start']>) {
  (testRunning ? inTest : inFile).add(this);
  return start.apply(this, args);
};
Dispatcher.prototype.stop = function (this: Dispatcher, ...args: Parameters<Dispatcher['stop']>) {
  inTest.delete(this);
  inFile.delete(this);
  return stop.apply(this, args);
};

async function stopAll(leaked: Set<Dispatcher>): Promise<number> {
  const list = [...leaked];
  leaked.clear();
  await Promise.all(list.map((d) => stop.call(d)));
  return list.length;
}

beforeEach(() => {
  testRunning = true;
});

afterEach(async () => {
  testRunning = false;
  expect(await stopAll(inTest), 'a test left a bus running: call bus.stop()').toBe(0);
});

afterAll(async () => {
  expect(await stopAll(inFile), 'a bus started in beforeAll was left running: stop it in afterAll').toBe(0);
});
