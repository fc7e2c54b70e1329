/**
 * A local stand-in for Slack's incoming webhooks, for the demo and the
 * tests: a real HTTP server that records every POST and answers each path
 * with a scripted sequence of statuses (the last one repeats).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got. */
export interface ReceivedPost {
  path: string;
  /** The status it answered. */
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  at: Date;
}

/** A running receiver. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>` */
  url: string;
  received: ReceivedPost[];
  /** Sets the statuses a path answers, in order (the last repeats; default 200). */
  script(path: string, statuses: readonly number[]): void;
  close(): Promise<void>;
}

const BODIES: Record<number, string> = {
  200: 'ok',
  404: 'no_service',
  410: 'channel_is_archived',
  500: 'internal_error',
};

/** Starts a receiver on a free port of 127.0.0.1. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const scripts = new Map<string, number[]>();
  const received: ReceivedPost[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      const queue = scripts.get(path);
      const status = (queue && queue.length > 1 ? queue.shift() : queue?.[0]) ?? 200;
      let body: unknown = Buffer.concat(chunks).toString('utf8');
      try {
        body = JSON.parse(body as string);
      } catch {
        // keep the text
      }
      received.push({ path, status, body, headers: request.headers, at: new Date() });
      response.writeHead(status, { 'content-type': 'text/plain' }).end(BODIES[status] ?? 'error');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script(path, statuses) {
      scripts.set(path, [...statuses]);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
