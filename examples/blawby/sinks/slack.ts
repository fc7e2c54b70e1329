/**
 * Internal notifications as Slack incoming webhooks (a JSON POST per
 * message). HTTP outcomes map to the bus's retry policy: 2xx is sent, 429
 * waits for `Retry-After`, 5xx and network errors are retried with backoff,
 * other 4xx (Slack's `invalid_token`, `channel_not_found`, `no_service` for a
 * revoked webhook) can never succeed and dead-letter at once.
 */
import { NonRetryableError, RetryAfterError } from '@blawby/event-bus';

/** A notification for a channel. */
export interface SlackMessage {
  /** e.g. `'#signups'`. */
  channel: string;
  text: string;
  /** Shown as a two-column list under the text. */
  fields?: Record<string, string>;
}

/** Port: posts internal notifications. Throws on failure (the bus retries). */
export interface Notifier {
  notify(message: SlackMessage, options?: { signal?: AbortSignal; idempotencyKey?: string }): Promise<void>;
}

/** Options of {@link slackWebhookNotifier}. */
export interface SlackWebhookOptions {
  /** Webhook URL per channel; `default` for channels not listed. */
  urls: Record<string, string> & { default?: string };
  /** Per-request timeout (default 5000 ms). */
  timeoutMs?: number;
}

/** The body Slack's incoming webhooks accept (text plus a section block of fields). */
export function slackPayload(message: SlackMessage): Record<string, unknown> {
  const fields = Object.entries(message.fields ?? {}).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}` }));
  return {
    channel: message.channel,
    text: message.text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: message.text } },
      ...(fields.length ? [{ type: 'section', fields }] : []),
    ],
  };
}

/** Posts to Slack incoming webhooks. */
export function slackWebhookNotifier(options: SlackWebhookOptions): Notifier {
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    async notify(message, { signal, idempotencyKey } = {}) {
      const url = options.urls[message.channel] ?? options.urls.default;
      if (!url) throw new NonRetryableError(`No webhook URL configured for channel ${message.channel}`);
      const timeout = AbortSignal.timeout(timeoutMs);
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(idempotencyKey ? { 'x-idempotency-key': idempotencyKey } : {}),
        },
        body: JSON.stringify(slackPayload(message)),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const body = (await response.text()).slice(0, 200);
      if (response.ok) return;
      const what = `Slack webhook for ${message.channel} answered ${response.status}${body ? ` (${body})` : ''}`;
      if (response.status === 429) {
        const seconds = Number(response.headers.get('retry-after'));
        throw new RetryAfterError(Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000, what);
      }
      if (response.status >= 500 || response.status === 408) throw new Error(what);
      throw new NonRetryableError(what);
    },
  };
}
