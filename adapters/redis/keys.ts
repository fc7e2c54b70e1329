/**
 * Where the transport keeps things in Redis: every key under the prefix, so
 * several buses (or test runs) on one server never see each other.
 */

/** The key names of one prefix. */
export interface Keys {
  /** The stream of events without an ordering key, consumed competitively by each group. */
  readonly unordered: string;
  /** The stream of key partition `index`. */
  partition(index: number): string;
  /** Every stream: the unordered one first, then the partitions in order. */
  readonly streams: readonly string[];
  /** The last entry id handed out by `publish` (ids are global across the streams, so they compare). */
  readonly sequence: string;
  /** A random marker written on first use; its loss tells that Redis lost its data. */
  readonly epoch: string;
  /** The partition count every instance on this prefix must share. */
  readonly partitionCount: string;
  /** Hash: group name → JSON of its patterns (for `progress` in processes that do not consume). */
  readonly groups: string;
  /** Sorted set of an unordered stream's delayed entries of `group` (entry id → not-before ms). */
  unorderedDue(group: string): string;
  /** Sorted set of the keyed entries of `group` waiting for a retry delay (entry id → not-before ms). */
  keyedDue(group: string): string;
  /** Sorted set of `group`'s live members (member → heartbeat expiry ms). */
  members(group: string): string;
  /** The lease of `group` on key partition `index` (value: the owner's token). */
  lease(group: string, index: number): string;
}

/** The keys of `prefix` with `partitions` key partitions. */
export function keysOf(prefix: string, partitions: number): Keys {
  const partition = (index: number) => `${prefix}:stream:key:${index}`;
  const unordered = `${prefix}:stream:unordered`;
  return {
    unordered,
    partition,
    streams: [unordered, ...Array.from({ length: partitions }, (_, i) => partition(i))],
    sequence: `${prefix}:sequence`,
    epoch: `${prefix}:epoch`,
    partitionCount: `${prefix}:partitions`,
    groups: `${prefix}:groups`,
    unorderedDue: (group) => `${prefix}:group:${group}:due:unordered`,
    keyedDue: (group) => `${prefix}:group:${group}:due:keyed`,
    members: (group) => `${prefix}:group:${group}:members`,
    lease: (group, index) => `${prefix}:group:${group}:lease:${index}`,
  };
}

/** The key partition of `orderingKey` among `partitions`: FNV-1a, so every process agrees without talking. */
export function partitionOf(orderingKey: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < orderingKey.length; i++) {
    hash ^= orderingKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}
