/**
 * Many tests make handlers fail on a bus without a logger on purpose; each
 * such bus reports its first failure per subscriber as a process warning
 * (src/bus/failure-warning.ts). This keeps those out of the test output;
 * every other warning is still printed, and tests can still listen for them.
 */
import { HANDLER_FAILED_WARNING } from '../../src/bus/failure-warning';

const printers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if ((warning as Error & { code?: string }).code === HANDLER_FAILED_WARNING) return;
  for (const print of printers) print(warning);
});
