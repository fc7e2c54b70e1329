/**
 * UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits,
 * so ids sort by creation time. A 12-bit counter in `rand_a` keeps ids made
 * in the same millisecond in order within this process.
 *
 * This runs once per published event, so an id is three ready-made strings
 * joined: the millisecond's `tttttttt-tttt-` (made once per millisecond), the
 * counter's `7ccc-` (a table) and a random `vrrr-rrrrrrrrrrrr` cut from a
 * batch encoded in one go (one syscall and one string per 512 ids).
 */
import { randomFillSync } from 'node:crypto';

/** Random tails made per batch. */
const BATCH = 512;
/** Length of a tail: `vrrr-rrrrrrrrrrrr` (the variant's bits, 62 random bits). */
const TAIL = 17;
const randomBytes = new Uint8Array(BATCH * 8);
const batchText = Buffer.alloc(BATCH * TAIL);
/** ASCII codes of the two hex digits of each byte value. */
const HEX_HI = new Uint8Array(256);
const HEX_LO = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  const hex = i.toString(16).padStart(2, '0');
  HEX_HI[i] = hex.charCodeAt(0);
  HEX_LO[i] = hex.charCodeAt(1);
}
/** `7ccc-` for each counter value: the version digit and the 12-bit counter. */
const COUNTERS: string[] = Array.from({ length: 0x1000 }, (_, c) => `7${c.toString(16).padStart(3, '0')}-`);

let tails = '';
let nextTail = BATCH;
let lastMs = -1;
let counter = 0;
/** `tttttttt-tttt-` of `lastMs`. */
let prefix = '';

function refillTails(): void {
  randomFillSync(randomBytes);
  const text = batchText;
  for (let t = 0, r = 0, at = 0; t < BATCH; t++, r += 8, at += TAIL) {
    const v = 0x80 | (randomBytes[r]! & 0x3f); // the variant: 10xx
    const b1 = randomBytes[r + 1]!;
    text[at] = HEX_HI[v]!;
    text[at + 1] = HEX_LO[v]!;
    text[at + 2] = HEX_HI[b1]!;
    text[at + 3] = HEX_LO[b1]!;
    text[at + 4] = 0x2d; // '-'
    for (let i = 2; i < 8; i++) {
      const b = randomBytes[r + i]!;
      text[at + 2 * i + 1] = HEX_HI[b]!;
      text[at + 2 * i + 2] = HEX_LO[b]!;
    }
  }
  tails = text.toString('latin1');
  nextTail = 0;
}

function prefixOf(ms: number): string {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-`;
}

/** A new UUIDv7 string (time-ordered). */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
    prefix = prefixOf(now);
  } else if (++counter > 0xfff) {
    // More than 4096 ids in one millisecond: borrow the next millisecond.
    lastMs += 1;
    counter = 0;
    prefix = prefixOf(lastMs);
  }
  if (nextTail === BATCH) refillTails();
  const from = nextTail++ * TAIL;
  return prefix + COUNTERS[counter]! + tails.slice(from, from + TAIL);
}
