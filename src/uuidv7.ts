/**
 * UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits,
 * so ids sort by creation time. A 12-bit counter in `rand_a` keeps ids made
 * in the same millisecond in order within this process.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 8 * 1024;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let lastMs = -1;
let counter = 0;

function randomBytes(n: number): number {
  // Random bytes are drawn from a pool refilled in bulk: one syscall per ~800 ids.
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

/** A new UUIDv7 string (time-ordered). */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > 0xfff) {
    // More than 4096 ids in one millisecond: borrow the next millisecond.
    lastMs += 1;
    counter = 0;
  }
  const ms = lastMs;
  const r = randomBytes(8);
  const h = HEX;
  const hi = Math.floor(ms / 0x10000);
  const lo = ms & 0xffff;
  return (
    h[(hi >>> 24) & 0xff]! +
    h[(hi >>> 16) & 0xff]! +
    h[(hi >>> 8) & 0xff]! +
    h[hi & 0xff]! +
    '-' +
    h[lo >>> 8]! +
    h[lo & 0xff]! +
    '-' +
    h[0x70 | (counter >>> 8)]! +
    h[counter & 0xff]! +
    '-' +
    h[0x80 | (pool[r]! & 0x3f)]! +
    h[pool[r + 1]!]! +
    '-' +
    h[pool[r + 2]!]! +
    h[pool[r + 3]!]! +
    h[pool[r + 4]!]! +
    h[pool[r + 5]!]! +
    h[pool[r + 6]!]! +
    h[pool[r + 7]!]!
  );
}
