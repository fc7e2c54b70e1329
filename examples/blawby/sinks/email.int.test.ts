/**
 * The two EmailSender implementations against real sinks: the file outbox
 * in a temp dir, and SMTP against a minimal SMTP server started here (enough
 * of RFC 5321 for one client: EHLO, MAIL, RCPT, DATA, QUIT).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileOutbox, readOutbox, smtpEmailSender } from './email';

interface SmtpMessage {
  from: string;
  to: string[];
  data: string;
}

/** A tiny SMTP server; `rejectRecipients` answers 550 to RCPT TO. */
async function startSmtpServer(options: { rejectRecipients?: boolean } = {}) {
  const messages: SmtpMessage[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    let inData = false;
    let current: SmtpMessage = { from: '', to: [], data: '' };
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply('220 localhost ESMTP test');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          current.data = buffer.slice(0, end).replace(/^\.\./gm, '.');
          buffer = buffer.slice(end + 5);
          inData = false;
          messages.push(current);
          current = { from: '', to: [], data: '' };
          reply('250 2.0.0 queued as TEST1');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-localhost\r\n250 8BITMIME');
        else if (verb === 'HELO') reply('250 localhost');
        else if (verb === 'MAIL') {
          current.from = line.match(/<([^>]*)>/)?.[1] ?? '';
          reply('250 2.1.0 OK');
        } else if (verb === 'RCPT') {
          if (options.rejectRecipients) reply('550 5.1.1 No such user');
          else {
            current.to.push(line.match(/<([^>]*)>/)?.[1] ?? '');
            reply('250 2.1.5 OK');
          }
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') reply('250 OK');
        else if (verb === 'QUIT') {
          reply('221 Bye');
          socket.end();
        } else reply('502 Command not implemented');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('fileOutbox', () => {
  it('writes one .eml per message, readable back, and writes a repeated idempotency key once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'blawby-outbox-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const outbox = fileOutbox({ dir: join(dir, 'nested') });
    const message = {
      to: 'ada@example.com',
      subject: 'Payment Receipt',
      text: `Amount: €12.00 — a line long enough to be folded by quoted-printable encoding ${'x'.repeat(
        80,
      )} token=abc_DEF-123`,
      template: 'payment-receipt',
      idempotencyKey: 'delivery/1',
    };
    const first = await outbox.send(message);
    const second = await outbox.send(message);
    await outbox.send({ to: 'bob@example.com', subject: 'Hi', text: 'plain' });
    expect(first.destination).toBe(second.destination);
    expect(await readdir(join(dir, 'nested'))).toHaveLength(2);
    const mails = await readOutbox(join(dir, 'nested'));
    const receipt = mails.find((m) => m.template === 'payment-receipt')!;
    expect(receipt.to).toBe('ada@example.com');
    expect(receipt.subject).toBe('Payment Receipt');
    expect(receipt.text.trimEnd()).toBe(message.text);
    expect(receipt.raw).toContain('From: Blawby <no-reply@blawby.local>');
  });

  it('reads an outbox that does not exist as empty', async () => {
    expect(await readOutbox(join(tmpdir(), 'blawby-no-such-outbox'))).toEqual([]);
  });
});

describe('smtpEmailSender', () => {
  it('delivers the message over SMTP', async () => {
    const server = await startSmtpServer();
    cleanups.push(server.close);
    const sender = smtpEmailSender({ host: '127.0.0.1', port: server.port, from: 'Blawby <hello@blawby.example>' });
    cleanups.push(async () => sender.close?.());
    const sent = await sender.send({
      to: 'ada@example.com',
      subject: 'Welcome to Blawby!',
      text: 'Hi Ada',
      template: 'welcome',
      idempotencyKey: 'delivery-42',
    });
    expect(sent.destination).toContain('250');
    expect(server.messages).toHaveLength(1);
    const [msg] = server.messages;
    expect(msg!.from).toBe('hello@blawby.example');
    expect(msg!.to).toEqual(['ada@example.com']);
    expect(msg!.data).toContain('Subject: Welcome to Blawby!');
    expect(msg!.data).toContain('X-Blawby-Template: welcome');
    expect(msg!.data).toMatch(/Message-ID:\s+<delivery-42@blawby\.example>/);
    expect(msg!.data).toContain('Hi Ada');
  });

  it('rejects when the server refuses the recipient, so the bus retries or dead-letters', async () => {
    const server = await startSmtpServer({ rejectRecipients: true });
    cleanups.push(server.close);
    const sender = smtpEmailSender({ host: '127.0.0.1', port: server.port });
    cleanups.push(async () => sender.close?.());
    await expect(sender.send({ to: 'nobody@example.com', subject: 'x', text: 'y' })).rejects.toThrow(
      /550|No such user|recipients/i,
    );
    expect(server.messages).toHaveLength(0);
  });
});
