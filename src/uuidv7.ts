/**
 * UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits,
 * so ids sort by creation time. A 12-bit counter in `rand_a` keeps ids made
 * in the same millisecond in order within this process.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 8 * 1024;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
/** ASCII codes of the two hex digits of each byte value. */
const HEX_HI = new Uint8Array(256);
const HEX_LO = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  const hex = i.toString(16).padStart(2, '0');
  HEX_HI[i] = hex.charCodeAt(0);
  HEX_LO[i] = hex.charCodeAt(1);
}
/** Positions of each byte's two digits in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
// The id is written into one buffer and read out as one flat string: no
// intermediate strings per id (this runs once per published event).
const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');
const bytes = new Uint8Array(16);

let lastMs = -1;
let counter = 0;

function fillRandom(into: Uint8Array, from: number, n: number): void {
  // Random bytes are drawn from a pool refilled in bulk: one syscall per ~1000 ids.
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  for (let i = 0; i < n; i++) into[from + i] = pool[poolOffset + i]!;
  poolOffset += n;
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
  const hi = Math.floor(ms / 0x10000);
  bytes[0] = (hi >>> 24) & 0xff;
  bytes[1] = (hi >>> 16) & 0xff;
  bytes[2] = (hi >>> 8) & 0xff;
  bytes[3] = hi & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | (counter >>> 8);
  bytes[7] = counter & 0xff;
  fillRandom(bytes, 8, 8);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  for (let i = 0; i < 16; i++) {
    const b = bytes[i]!;
    const at = AT[i]!;
    text[at] = HEX_HI[b]!;
    text[at + 1] = HEX_LO[b]!;
  }
  return text.toString('latin1', 0, 36);
}
