/**
 * The in-process transport (the default): notices travel over an
 * eventemitter3 emitter inside this process. Each consumer group gets every
 * message once, spread round-robin over the group's members.
 */
import EventEmitter from 'eventemitter3';
import type { Transport, TransportHandler, TransportMessage, TransportSubscription } from '../ports/transport';

const CAPABILITIES = Object.freeze({ crossProcess: false, durable: false });
const MESSAGES = 'messages';

interface Group {
  members: Member[];
  next: number;
}

interface Member {
  handler: TransportHandler;
  active: boolean;
}

/**
 * Creates the in-process {@link Transport}. Not durable: a notice emitted while
 * no dispatcher listens is dropped, which costs nothing since dispatchers also
 * poll the storage.
 *
 * @example
 * ```ts
 * const bus = createEventBus({ catalog, transport: inProcessTransport() });
 * ```
 */
export function inProcessTransport(): Transport {
  return new InProcessTransport();
}

class InProcessTransport implements Transport {
  readonly name = 'in-process';
  readonly capabilities = CAPABILITIES;

  private readonly emitter = new EventEmitter();
  private readonly groups = new Map<string, Group>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor() {
    this.emitter.on(MESSAGES, (messages: readonly TransportMessage[]) => this.fanOut(messages));
  }

  async publish(messages: readonly TransportMessage[]): Promise<void> {
    if (this.closed || messages.length === 0) return;
    this.emitter.emit(MESSAGES, messages);
  }

  async subscribe(group: string, handler: TransportHandler): Promise<TransportSubscription> {
    const member: Member = { handler, active: true };
    let entry = this.groups.get(group);
    if (!entry) {
      entry = { members: [], next: 0 };
      this.groups.set(group, entry);
    }
    entry.members.push(member);
    return {
      unsubscribe: async () => {
        member.active = false;
        const current = this.groups.get(group);
        if (current) {
          current.members = current.members.filter((m) => m !== member);
          if (current.members.length === 0) this.groups.delete(group);
        }
        await this.settled();
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.emitter.removeAllListeners();
    this.groups.clear();
    await this.settled();
  }

  private fanOut(messages: readonly TransportMessage[]): void {
    for (const group of this.groups.values()) {
      const member = group.members[group.next++ % group.members.length];
      if (!member?.active) continue;
      let result: Promise<void> | void;
      try {
        result = member.handler(messages);
      } catch {
        continue; // not durable: a failed notice is dropped; dispatchers poll anyway
      }
      if (result && typeof result.then === 'function') {
        const tracked = result.then(
          () => undefined,
          () => undefined,
        );
        this.inFlight.add(tracked);
        void tracked.then(() => this.inFlight.delete(tracked));
      }
    }
  }

  private async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}
