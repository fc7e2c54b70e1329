/**
 * Where everything lives on the broker: stream, subject and consumer names
 * derived from the prefix, the event type, the partition and the group.
 *
 * Layout (prefix `p`, N partitions):
 * - stream `p_events` over `p.u.>` (events without an ordering key, subject
 *   `p.u.{domain}.{name}`) and `p.k.>` (keyed events, subject
 *   `p.k.{partition}.{domain}.{name}`);
 * - stream `p_leases` over `p.lease.>`: one record per group saying which
 *   member owns which key partition.
 * - consumers on `p_events`: `u-{group}` for the unordered subjects and
 *   `k{partition}-{group}` for each key partition.
 */
import { createHash } from 'node:crypto';
import { matchesPattern } from '@blawby/event-bus';

/** The broker-side names of one transport (one prefix). */
export interface Names {
  readonly prefix: string;
  readonly eventStream: string;
  readonly leaseStream: string;
  readonly eventSubjects: readonly string[];
  readonly leaseSubjects: readonly string[];
}

/** The names of prefix `prefix`. */
export function namesFor(prefix: string): Names {
  return {
    prefix,
    eventStream: `${prefix}_events`,
    leaseStream: `${prefix}_leases`,
    eventSubjects: [`${prefix}.u.>`, `${prefix}.k.>`],
    leaseSubjects: [`${prefix}.lease.>`],
  };
}

/** The subject an event is published on. */
export function eventSubject(names: Names, eventType: string, partition: number | undefined): string {
  return partition === undefined ? `${names.prefix}.u.${eventType}` : `${names.prefix}.k.${partition}.${eventType}`;
}

/**
 * A group name as a token that is valid in consumer names and subjects
 * (letters, digits, `_`, `-`): kept as is when it already is one, else
 * cleaned and suffixed with a hash of the original so two names never meet.
 */
export function groupToken(group: string): string {
  if (/^[A-Za-z0-9_-]{1,64}$/.test(group)) return group;
  const clean = group.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(group).digest('hex').slice(0, 12);
  return `${clean}-${hash}`;
}

/** Consumer of the unordered subjects for `group`. */
export function unorderedConsumer(group: string): string {
  return `u-${groupToken(group)}`;
}

/** Consumer of key partition `partition` for `group`. */
export function partitionConsumer(group: string, partition: number): string {
  return `k${partition}-${groupToken(group)}`;
}

/** The subject of `group`'s lease record. */
export function leaseSubject(names: Names, group: string): string {
  return `${names.prefix}.lease.${groupToken(group)}`;
}

/**
 * The partition of an ordering key: FNV-1a (32 bit) of its UTF-8 bytes,
 * modulo the partition count. Every member and publisher must use the same
 * count, which the stream's description records.
 */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

/**
 * How a group's patterns are filtered. One filter subject per consumer is
 * all NATS 2.9 has, so the broker filters only when the patterns reduce to
 * one subject (`'*'`, one `'domain.*'` or one type); otherwise the consumer
 * takes everything and the transport acknowledges what does not match.
 */
export interface GroupFilter {
  /** The filter subject under the channel (`'>'`, `'billing.*'`, `'billing.invoice_paid'`). */
  readonly tail: string;
  /** Whether an event type belongs to the group (checked for every delivery). */
  matches(eventType: string): boolean;
}

/** The {@link GroupFilter} of `patterns`. */
export function groupFilter(patterns: readonly string[]): GroupFilter {
  const unique = [...new Set(patterns)];
  const matches = (eventType: string) => unique.some((p) => matchesPattern(p, eventType));
  const tail = unique.length === 1 && unique[0] !== '*' ? unique[0]! : '>';
  return { tail: unique.includes('*') ? '>' : tail, matches };
}

/** The filter subject of the unordered consumer. */
export function unorderedFilter(names: Names, filter: GroupFilter): string {
  return `${names.prefix}.u.${filter.tail}`;
}

/** The filter subject of one partition consumer. */
export function partitionFilter(names: Names, partition: number, filter: GroupFilter): string {
  return `${names.prefix}.k.${partition}.${filter.tail}`;
}
