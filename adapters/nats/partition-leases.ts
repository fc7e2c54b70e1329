/**
 * Which member owns which key partition of a group: one record per group in
 * the lease stream (one message per subject), changed only by
 * compare-and-set on its sequence (`Nats-Expected-Last-Subject-Sequence`).
 *
 * Every member rewrites the record each tick (a third of its lease), bumping
 * its own heartbeat counter. A member whose counter has not moved for its
 * lease, as seen by another member's own successful reads (no clocks are
 * compared), is dead: the next writer removes it and frees its partitions.
 * Each member aims at ceil(partitions / live members): it claims free
 * partitions up to that share, and drains and frees what it holds beyond it
 * (draining waits until nothing of the partition is out).
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { isStreamMissing } from './broker';
import type { GroupContext } from './group-context';
import { leaseSubject } from './names';

interface LeaseRecord {
  members: Record<string, { beat: number; leaseMs: number }>;
  owners: Record<string, string>;
}

/** What the lease holder asks of the partitions it owns. */
export interface PartitionHost {
  /** The member now owns `partition`: start it. */
  acquired(partition: number): void;
  /** Stop handing out `partition`'s events (to be freed once idle), or resume after all. */
  setDraining(partition: number, draining: boolean): void;
  /** Nothing of `partition` is out: it can be freed. */
  idle(partition: number): boolean;
  /** The member no longer owns `partition` (`graceful`: it freed it itself). */
  lost(partition: number, graceful: boolean): Promise<void>;
}

const decoder = new TextDecoder();

/** The lease side of one member in one group. */
export class PartitionLeases {
  /** Partitions this member owns, as the record last said. */
  readonly owned = new Set<number>();

  private beat = 0;
  private readonly seen = new Map<string, { beat: number; at: number }>();
  private resetSeen = false;
  private lastWrittenAt = Date.now();
  private readonly subject: string;

  constructor(
    private readonly ctx: GroupContext,
    private readonly host: PartitionHost,
  ) {
    this.subject = leaseSubject(ctx.names, ctx.group);
  }

  /**
   * The last round wrote the record recently enough that no other member can
   * have seen this one as dead: keyed events may be handed out. Others wait a
   * whole lease from the last heartbeat they saw; this stops a third earlier.
   */
  confident(): boolean {
    return Date.now() - this.lastWrittenAt < (this.ctx.leaseMs * 2) / 3;
  }

  /** One round: heartbeat, remove the dead, free or claim to the fair share. */
  async tick(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const read = await this.read();
      if (!read) return this.failed();
      const { record, seq } = read;
      const now = Date.now();
      const next: LeaseRecord = { members: { ...record.members }, owners: { ...record.owners } };
      this.observe(record, now);
      for (const [member, { leaseMs }] of Object.entries(record.members)) {
        if (member === this.ctx.member) continue;
        if (now - this.seen.get(member)!.at > leaseMs) delete next.members[member];
      }
      next.members[this.ctx.member] = { beat: this.beat + 1, leaseMs: this.ctx.leaseMs };
      for (const [p, member] of Object.entries(next.owners)) {
        if (!next.members[member] || Number(p) >= this.ctx.partitions) delete next.owners[p];
      }
      const mine = this.partitionsOf(next);
      const share = Math.ceil(this.ctx.partitions / Object.keys(next.members).length);
      const keep = new Set(mine.slice(0, share));
      const freed: number[] = [];
      for (const p of mine) {
        if (keep.has(p)) continue;
        if (this.owned.has(p) && this.host.idle(p)) {
          delete next.owners[String(p)];
          freed.push(p);
        }
      }
      for (let p = 0; p < this.ctx.partitions && keep.size < share; p++) {
        if (next.owners[String(p)] === undefined) {
          next.owners[String(p)] = this.ctx.member;
          keep.add(p);
        }
      }
      // Others see the new heartbeat no sooner than the write started.
      const started = Date.now();
      const written = await this.write(next, seq);
      if (written === 'conflict') continue;
      if (written === 'failed') return this.failed();
      this.beat += 1;
      this.lastWrittenAt = started;
      await this.apply(new Set(this.partitionsOf(next)), keep, freed);
      return;
    }
  }

  /** Leaves the group: gives back the partitions and removes this member from the record. */
  async release(): Promise<void> {
    await Promise.all([...this.owned].map((p) => this.host.lost(p, true)));
    this.owned.clear();
    for (let attempt = 0; attempt < 5; attempt++) {
      const read = await this.read();
      if (!read) return;
      const next: LeaseRecord = { members: { ...read.record.members }, owners: { ...read.record.owners } };
      delete next.members[this.ctx.member];
      for (const [p, member] of Object.entries(next.owners)) if (member === this.ctx.member) delete next.owners[p];
      if ((await this.write(next, read.seq)) !== 'conflict') return;
    }
  }

  private async apply(nowMine: Set<number>, keep: Set<number>, freed: number[]): Promise<void> {
    for (const p of freed) this.owned.delete(p);
    await Promise.all(freed.map((p) => this.host.lost(p, true)));
    for (const p of [...this.owned]) {
      if (!nowMine.has(p)) {
        // Another member took it: this member was seen as dead.
        this.owned.delete(p);
        await this.host.lost(p, false);
      }
    }
    for (const p of nowMine) {
      if (!this.owned.has(p)) {
        this.owned.add(p);
        this.host.acquired(p);
      }
      this.host.setDraining(p, !keep.has(p));
    }
  }

  /** A round that could not reach the record: past the lease, this member can no longer count on its partitions. */
  private async failed(): Promise<void> {
    this.resetSeen = true;
    if (Date.now() - this.lastWrittenAt <= this.ctx.leaseMs) return;
    const owned = [...this.owned];
    this.owned.clear();
    await Promise.all(owned.map((p) => this.host.lost(p, false)));
  }

  /** Notes whose heartbeat moved; after a failed round every member starts afresh (the gap proves nothing). */
  private observe(record: LeaseRecord, now: number): void {
    if (this.resetSeen) this.seen.clear();
    this.resetSeen = false;
    for (const [member, { beat }] of Object.entries(record.members)) {
      const last = this.seen.get(member);
      if (!last || last.beat !== beat) this.seen.set(member, { beat, at: now });
    }
    for (const member of this.seen.keys()) if (!record.members[member]) this.seen.delete(member);
  }

  private partitionsOf(record: LeaseRecord): number[] {
    return Object.entries(record.owners)
      .filter(([, member]) => member === this.ctx.member)
      .map(([p]) => Number(p))
      .sort((a, b) => a - b);
  }

  private async read(): Promise<{ record: LeaseRecord; seq: number } | undefined> {
    try {
      const stored = await this.ctx.jsm.streams.getMessage(this.ctx.names.leaseStream, { last_by_subj: this.subject });
      if (!stored) return { record: { members: {}, owners: {} }, seq: 0 };
      const record = JSON.parse(decoder.decode(stored.data)) as Partial<LeaseRecord>;
      return { record: { members: record.members ?? {}, owners: record.owners ?? {} }, seq: stored.seq };
    } catch (err) {
      this.ctx.logger.debug({ err, group: this.ctx.group }, 'nats transport: lease record unreadable');
      if (isStreamMissing(err)) await this.ctx.restoreStreams().catch(() => {});
      return undefined;
    }
  }

  private async write(record: LeaseRecord, seq: number): Promise<'ok' | 'conflict' | 'failed'> {
    try {
      await this.ctx.js.publish(this.subject, JSON.stringify(record), { expect: { lastSubjectSequence: seq }, timeout: 5000 });
      return 'ok';
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return 'conflict';
      this.ctx.logger.debug({ err, group: this.ctx.group }, 'nats transport: lease record not written');
      if (isStreamMissing(err)) await this.ctx.restoreStreams().catch(() => {});
      return 'failed';
    }
  }
}
