/**
 * The dashboard's live stream (server-sent events) on a Node response: the
 * same for every adapter that has one (Fastify's raw reply, Express, the
 * CLI's own server); Hono answers with a web `Response` instead.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DASHBOARD_STREAM_HEADERS, type Dashboard } from './dashboard';

/**
 * Starts streaming to `res` until the client goes away or the function added
 * to `open` is called (the adapter ends every open stream on close).
 */
export function openDashboardStream(dashboard: Dashboard, req: IncomingMessage, res: ServerResponse, open: Set<() => void>): void {
  res.writeHead(200, DASHBOARD_STREAM_HEADERS);
  res.flushHeaders();
  const stop = dashboard.stream((chunk) => res.write(chunk));
  const end = () => {
    if (!open.delete(end)) return;
    stop();
    res.end();
  };
  open.add(end);
  req.on('close', end);
}
