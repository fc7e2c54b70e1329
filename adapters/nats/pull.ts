/**
 * Pull requests and acknowledgements spoken directly on the JetStream wire
 * protocol (`$JS.API.CONSUMER.MSG.NEXT`, `+ACK`, `-NAK`, `+WPI`). The client
 * library's `fetch` cannot wait less than a second and may drop messages that
 * arrive after it stops; here a request's inbox stays open until the server
 * ends the request, so no message the server sent is ever lost in this
 * process (a key partition's owner relies on that to keep order).
 */
import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';

/** A message a pull request brought. */
export interface PulledMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The acknowledgement subject of this delivery. */
  readonly reply: string;
  readonly streamSeq: number;
  /** 1 the first time the consumer delivers the message. */
  readonly deliveryCount: number;
}

/** How a pull request ended. */
export interface PullResult {
  /** The server never answered (consumer missing, connection lost). */
  readonly silent: boolean;
  /**
   * The server ended the request itself (batch full, or a status such as
   * "expired"): nothing more can come for it. When `false` (timed out here,
   * stopped, connection trouble), a message may still have been sent to it
   * and be pending on the server without this member holding it.
   */
  readonly complete: boolean;
}

/** One pull request under way. */
export interface PullRequest {
  /** Resolves when the server ended the request (batch full, expired) or it was stopped. */
  readonly done: Promise<PullResult>;
  /** Ends it now; messages the server still sends to it are redelivered after their ack wait. */
  stop(): void;
}

/** Grace after a request's expiry before it counts as unanswered. */
const SILENCE_GRACE_MS = 2000;

/**
 * Asks consumer `consumer` of `stream` for up to `batch` messages, waiting up
 * to `expiresMs` for them (0: only what is there now). `onMessage` sees each
 * message as it arrives.
 */
export function pull(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  batch: number,
  expiresMs: number,
  onMessage: (message: PulledMessage) => void,
): PullRequest {
  const inbox = createInbox();
  let received = 0;
  let answered = false;
  let finish!: (result: PullResult) => void;
  const done = new Promise<PullResult>((resolve) => (finish = resolve));
  let ended = false;
  const end = (complete: boolean) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    sub.unsubscribe();
    finish({ silent: !answered, complete });
  };
  const sub = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return end(false);
      answered = true;
      const parsed = msg.reply ? parseDelivery(msg) : undefined;
      if (!parsed) return end(true); // a status: 404 no messages, 408 expired, 409 limits or consumer gone
      received += 1;
      onMessage(parsed);
      if (received >= batch) end(true);
    },
  });
  const timer = setTimeout(() => end(false), expiresMs + SILENCE_GRACE_MS);
  const request = expiresMs > 0 ? { batch, expires: Math.round(expiresMs * 1e6) } : { batch, no_wait: true };
  try {
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(request), { reply: inbox });
  } catch {
    end(false);
  }
  return { done, stop: () => end(false) };
}

/**
 * Reads the delivery from the acknowledgement subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
 * with a domain and account hash after `$JS.ACK` on newer servers.
 */
function parseDelivery(msg: Msg): PulledMessage | undefined {
  const reply = msg.reply!;
  if (!reply.startsWith('$JS.ACK.')) return undefined;
  const tokens = reply.split('.');
  const base = tokens.length === 9 ? 2 : tokens.length >= 11 ? 4 : -1;
  if (base < 0) return undefined;
  const deliveryCount = Number(tokens[base + 2]);
  const streamSeq = Number(tokens[base + 3]);
  if (!Number.isFinite(deliveryCount) || !Number.isFinite(streamSeq)) return undefined;
  return { subject: msg.subject, data: msg.data, reply, streamSeq, deliveryCount };
}

/** Acknowledges a delivery and waits for the server to confirm it. */
export async function ackAndConfirm(nc: NatsConnection, reply: string, timeoutMs: number): Promise<void> {
  await nc.request(reply, '+ACK', { timeout: timeoutMs });
}

/**
 * Gives a delivery back, to be redelivered no sooner than `delayMs` from now.
 * False when the connection is closed (the ack wait then brings it back).
 */
export function nak(nc: NatsConnection, reply: string, delayMs: number): boolean {
  const body = delayMs > 0 ? `-NAK ${JSON.stringify({ delay: Math.round(delayMs * 1e6) })}` : '-NAK';
  return send(nc, reply, body);
}

/** Resets the delivery's ack wait (the member is still working on it). False when the connection is closed. */
export function working(nc: NatsConnection, reply: string): boolean {
  return send(nc, reply, '+WPI');
}

function send(nc: NatsConnection, subject: string, body: string): boolean {
  try {
    nc.publish(subject, body);
    return true;
  } catch {
    return false;
  }
}
