/**
 * The `EmailSender` port and its two implementations: SMTP (nodemailer) for
 * production, and a file outbox (one `.eml` file per message) used by default,
 * so that the example and its tests send real, inspectable MIME messages
 * without a mail server.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { SendMailOptions } from 'nodemailer';

/** An email to send. */
export interface EmailMessage {
  to: string;
  subject: string;
  /** Plain-text body. */
  text: string;
  /** Optional HTML body. */
  html?: string;
  /**
   * Makes sending idempotent: the same key is sent once (the file outbox
   * writes one file per key; SMTP uses it as the `Message-ID`, which mail
   * systems use to drop duplicates). Pass the handler's `ctx.deliveryId`.
   */
  idempotencyKey?: string;
  /** A tag for the kind of message (`welcome`, `payment-receipt`, ...), sent as `X-Blawby-Template`. */
  template?: string;
}

/** What a sender reports about a sent message. */
export interface SentEmail {
  messageId: string;
  /** Where it went: an SMTP response or the outbox file. */
  destination: string;
}

/** Port: sends email. Throws on failure (the bus retries the handler). */
export interface EmailSender {
  readonly name: string;
  send(message: EmailMessage): Promise<SentEmail>;
  close?(): Promise<void>;
}

const DEFAULT_FROM = 'Blawby <no-reply@blawby.local>';

function messageIdFor(key: string | undefined, domain: string): string | undefined {
  return key ? `<${key.replace(/[^A-Za-z0-9._-]/g, '-')}@${domain}>` : undefined;
}

function mailOptions(from: string, message: EmailMessage, domain: string): SendMailOptions {
  const messageId = messageIdFor(message.idempotencyKey, domain);
  return {
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    ...(message.html ? { html: message.html } : {}),
    ...(messageId ? { messageId } : {}),
    ...(message.template ? { headers: { 'X-Blawby-Template': message.template } } : {}),
  };
}

/** Options of {@link smtpEmailSender}. */
export interface SmtpEmailSenderOptions {
  host: string;
  port: number;
  /** TLS from the start (port 465); otherwise STARTTLS when offered. */
  secure?: boolean;
  auth?: { user: string; pass: string };
  from?: string;
  /** Per-connection timeouts in ms (default 10 000). */
  timeoutMs?: number;
}

/** Sends email over SMTP with nodemailer. */
export function smtpEmailSender(options: SmtpEmailSenderOptions): EmailSender {
  const from = options.from ?? DEFAULT_FROM;
  const timeout = options.timeoutMs ?? 10_000;
  const transport = nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure ?? false,
    ...(options.auth ? { auth: options.auth } : {}),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  const domain = from.match(/@([^>\s]+)/)?.[1] ?? 'blawby.local';
  return {
    name: 'smtp',
    async send(message) {
      const info = await transport.sendMail(mailOptions(from, message, domain));
      return { messageId: info.messageId, destination: String(info.response) };
    },
    async close() {
      transport.close();
    },
  };
}

/** Options of {@link fileOutbox}. */
export interface FileOutboxOptions {
  /** Directory of the `.eml` files (created if missing). */
  dir: string;
  from?: string;
}

/** An outbox message as read back by {@link readOutbox}. */
export interface OutboxEmail {
  file: string;
  to: string;
  subject: string;
  template: string | undefined;
  /** The plain-text body, decoded (single-part messages, as this app sends). */
  text: string;
  /** The raw MIME message. */
  raw: string;
}

/**
 * Writes each message as an RFC 822 `.eml` file (built by nodemailer, so
 * it opens in any mail client). With an idempotency key the file is named
 * after it and a second send of the same key writes nothing.
 */
export function fileOutbox(options: FileOutboxOptions): EmailSender & { readonly dir: string } {
  const from = options.from ?? DEFAULT_FROM;
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  let ready: Promise<unknown> | undefined;
  let sequence = 0;
  return {
    name: 'file-outbox',
    dir: options.dir,
    async send(message) {
      ready ??= mkdir(options.dir, { recursive: true });
      await ready;
      const info = await transport.sendMail(mailOptions(from, message, 'blawby.local'));
      const base = message.idempotencyKey
        ? message.idempotencyKey.replace(/[^A-Za-z0-9._-]/g, '-')
        : `${Date.now()}-${process.pid}-${++sequence}`;
      const file = join(options.dir, `${base}.eml`);
      try {
        await writeFile(file, info.message as Buffer, { flag: 'wx' });
      } catch (err) {
        // Already written by an earlier attempt of the same delivery: sent once.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      return { messageId: info.messageId, destination: file };
    },
  };
}

function header(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  // Unfold continuation lines first (RFC 5322 2.2.3).
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const line = unfolded.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** The decoded body of a single-part message (quoted-printable, base64 or 7bit). */
function bodyText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const body = split < 0 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const encoding = header(raw, 'Content-Transfer-Encoding')?.toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const soft = body.replace(/=\r?\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < soft.length; i++) {
      const hex = soft[i] === '=' ? soft.slice(i + 1, i + 3) : '';
      if (/^[0-9A-F]{2}$/i.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else bytes.push(soft.charCodeAt(i) & 0xff);
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return body;
}

/** Reads the messages of an outbox directory (oldest first), for reports and tests. */
export async function readOutbox(dir: string): Promise<OutboxEmail[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.eml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const emails = await Promise.all(
    files.map(async (file) => {
      const path = join(dir, file);
      const [raw, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      const email: OutboxEmail = {
        file,
        to: header(raw, 'To') ?? '',
        subject: header(raw, 'Subject') ?? '',
        template: header(raw, 'X-Blawby-Template'),
        text: bodyText(raw),
        raw,
      };
      return { email, at: info.mtimeMs };
    }),
  );
  return emails.sort((a, b) => a.at - b.at).map((e) => e.email);
}
