/**
 * Signup, email verification, login and logout, password reset and change,
 * account deletion. Every event is published in the transaction that writes
 * the rows it describes: both commit, or neither does.
 */
import { and, eq, gt, isNull, ne } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { hashPassword, hashToken, newToken, verifyPassword } from '../auth/credentials';
import { requireCaller } from '../auth/sessions';
import { members, sessions, users, verificationTokens } from '../db/schema';
import { logIn, signUp } from '../services/accounts';
import type { RouteDeps } from './deps';
import { HttpError, parse, requestEvents } from './http';

const password = z.string().min(8).max(200);
const signupBody = z.object({
  email: z.email().transform((e) => e.toLowerCase()),
  name: z.string().trim().min(1).max(200),
  password,
  referralSource: z.enum(['organic', 'referral', 'paid']).optional(),
  referralCode: z.string().max(64).optional(),
});
const loginBody = z.object({ email: z.email().transform((e) => e.toLowerCase()), password: z.string() });
const tokenBody = z.object({ token: z.string().min(20).max(200) });
const resetConfirmBody = z.object({ token: z.string().min(20).max(200), password });
const changePasswordBody = z.object({ currentPassword: z.string(), newPassword: password });
const deleteBody = z.object({ reason: z.string().max(500).optional() });

const RESET_TTL_MS = 60 * 60 * 1000;

/** Registers the authentication routes. */
export async function authRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const { db } = deps;

  app.post('/auth/signup', async (request, reply) => {
    const body = parse(signupBody, request.body);
    const verification = newToken();
    const result = await signUp(db, requestEvents(request), body, { verificationToken: verification });
    // The verification link is a secret: it goes straight to the user, never into an event.
    await deps.email.send({
      to: body.email,
      subject: 'Verify your email address',
      template: 'email-verification',
      text: `Confirm your email address for Blawby:\n\n${deps.appUrl}/verify-email?token=${verification}\n`,
    });
    return reply.code(201).send({
      user: { id: result.userId, email: body.email, name: body.name },
      token: result.session.token,
      sessionId: result.session.id,
    });
  });

  app.post('/auth/verify-email', async (request) => {
    const { token } = parse(tokenBody, request.body);
    return db.transaction(async (tx) => {
      const [row] = await tx
        .update(verificationTokens)
        .set({ usedAt: new Date() })
        .where(
          and(
            eq(verificationTokens.tokenHash, hashToken(token)),
            eq(verificationTokens.purpose, 'email_verification'),
            isNull(verificationTokens.usedAt),
            gt(verificationTokens.expiresAt, new Date()),
          ),
        )
        .returning({ userId: verificationTokens.userId });
      if (!row) throw new HttpError(400, 'INVALID_TOKEN', 'The verification link is invalid or has expired');
      const [user] = await tx
        .update(users)
        .set({ emailVerifiedAt: new Date() })
        .where(eq(users.id, row.userId))
        .returning({ email: users.email });
      if (!user) throw new HttpError(400, 'INVALID_TOKEN', 'The account no longer exists');
      await requestEvents(request).publish(
        'auth.email_verified',
        { email: user.email },
        { tx, actor: row.userId, actorType: 'user' },
      );
      return { verified: true };
    });
  });

  app.post('/auth/login', async (request) => {
    const body = parse(loginBody, request.body);
    const session = await logIn(db, requestEvents(request), body);
    return { token: session.token, sessionId: session.id, expiresAt: session.expiresAt.toISOString() };
  });

  app.post('/auth/logout', async (request, reply) => {
    const caller = await requireCaller(db, request);
    await db.transaction(async (tx) => {
      await tx.update(sessions).set({ revokedAt: new Date() }).where(eq(sessions.id, caller.sessionId));
      const events = requestEvents(request);
      const actor = { tx, actor: caller.userId, actorType: 'user' } as const;
      await events.publish('auth.user_logged_out', { sessionId: caller.sessionId }, actor);
      await events.publish('session.invalidated', { sessionId: caller.sessionId, reason: 'logout' }, actor);
    });
    return reply.code(204).send();
  });

  app.get('/me', async (request) => {
    const caller = await requireCaller(db, request);
    return {
      id: caller.userId,
      email: caller.email,
      name: caller.name,
      emailVerified: caller.emailVerified,
      activeOrganizationId: caller.activeOrganizationId,
      memberships: [...caller.memberships].map(([organizationId, role]) => ({ organizationId, role })),
    };
  });

  app.post('/auth/password-reset', async (request, reply) => {
    const { email } = parse(z.object({ email: z.email().transform((e) => e.toLowerCase()) }), request.body);
    const [user] = await db.select().from(users).where(eq(users.email, email));
    if (user) {
      const token = newToken();
      const expiresAt = new Date(Date.now() + RESET_TTL_MS);
      await db.transaction(async (tx) => {
        await tx
          .insert(verificationTokens)
          .values({ tokenHash: hashToken(token), userId: user.id, purpose: 'password_reset', expiresAt });
        await requestEvents(request).publish(
          'auth.password_reset_requested',
          { email, expiresAt: expiresAt.toISOString() },
          { tx, actor: user.id, actorType: 'user' },
        );
      });
      await deps.email.send({
        to: email,
        subject: 'Reset your Blawby password',
        template: 'password-reset',
        text: `Choose a new password within the hour:\n\n${deps.appUrl}/reset-password?token=${token}\n`,
      });
    }
    // Same answer whether or not the account exists.
    return reply.code(202).send({ requested: true });
  });

  app.post('/auth/password-reset/confirm', async (request, reply) => {
    const body = parse(resetConfirmBody, request.body);
    const passwordHash = await hashPassword(body.password);
    await db.transaction(async (tx) => {
      const [row] = await tx
        .update(verificationTokens)
        .set({ usedAt: new Date() })
        .where(
          and(
            eq(verificationTokens.tokenHash, hashToken(body.token)),
            eq(verificationTokens.purpose, 'password_reset'),
            isNull(verificationTokens.usedAt),
            gt(verificationTokens.expiresAt, new Date()),
          ),
        )
        .returning({ userId: verificationTokens.userId });
      if (!row) throw new HttpError(400, 'INVALID_TOKEN', 'The reset link is invalid or has expired');
      await tx.update(users).set({ passwordHash }).where(eq(users.id, row.userId));
      const revoked = await tx
        .update(sessions)
        .set({ revokedAt: new Date() })
        .where(and(eq(sessions.userId, row.userId), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id });
      const events = requestEvents(request);
      const actor = { tx, actor: row.userId, actorType: 'user' } as const;
      await events.publish('auth.password_changed', { method: 'reset', sessionsInvalidated: revoked.length }, actor);
      for (const s of revoked) {
        await events.publish('session.invalidated', { sessionId: s.id, reason: 'password_changed' }, actor);
      }
    });
    return reply.code(204).send();
  });

  app.post('/auth/password', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const body = parse(changePasswordBody, request.body);
    const [user] = await db.select().from(users).where(eq(users.id, caller.userId));
    if (!user || !(await verifyPassword(body.currentPassword, user.passwordHash))) {
      throw new HttpError(403, 'INVALID_CREDENTIALS', 'The current password is incorrect');
    }
    const passwordHash = await hashPassword(body.newPassword);
    await db.transaction(async (tx) => {
      await tx.update(users).set({ passwordHash }).where(eq(users.id, caller.userId));
      // Other sessions end; this one stays.
      const revoked = await tx
        .update(sessions)
        .set({ revokedAt: new Date() })
        .where(and(eq(sessions.userId, caller.userId), isNull(sessions.revokedAt), ne(sessions.id, caller.sessionId)))
        .returning({ id: sessions.id });
      const events = requestEvents(request);
      const actor = { tx, actor: caller.userId, actorType: 'user' } as const;
      await events.publish('auth.password_changed', { method: 'change', sessionsInvalidated: revoked.length }, actor);
      for (const s of revoked) {
        await events.publish('session.invalidated', { sessionId: s.id, reason: 'password_changed' }, actor);
      }
    });
    return reply.code(204).send();
  });

  app.delete('/me', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const body = parse(deleteBody, request.body);
    if ([...caller.memberships.values()].includes('owner')) {
      throw new HttpError(409, 'OWNS_ORGANIZATION', 'Transfer or delete the organizations you own first');
    }
    await db.transaction(async (tx) => {
      const live = await tx
        .select({ id: sessions.id })
        .from(sessions)
        .where(and(eq(sessions.userId, caller.userId), isNull(sessions.revokedAt)));
      await tx.delete(members).where(eq(members.userId, caller.userId));
      await tx.delete(users).where(eq(users.id, caller.userId));
      const events = requestEvents(request);
      const actor = { tx, actor: caller.userId, actorType: 'user' } as const;
      await events.publish(
        'auth.account_deleted',
        { email: caller.email, ...(body.reason ? { reason: body.reason } : {}) },
        actor,
      );
      for (const s of live)
        await events.publish('session.invalidated', { sessionId: s.id, reason: 'account_deleted' }, actor);
    });
    return reply.code(204).send();
  });
}
