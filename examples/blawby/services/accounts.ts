/**
 * Signup and login, shared by the Fastify routes (`../routes/auth.ts`) and
 * the Express variant (`../../express/app.ts`). The caller parses the body
 * and shapes the response; the events are published in the transaction that
 * writes the rows they describe, so both commit or neither does.
 */
import { eq } from 'drizzle-orm';
import type { PayloadInput } from '@blawby/event-bus';
// A type only: the same `RequestEvents` as '@blawby/event-bus/express' exports.
import type { RequestEvents } from '@blawby/event-bus/fastify';
import { hashPassword, hashToken, newId, newToken, verifyPassword } from '../auth/credentials';
import { SESSION_TTL_MS } from '../auth/sessions';
import type { BlawbyCatalog } from '../catalog';
import type { AppDb, AppTx } from '../db/connect';
import { sessions, users, verificationTokens } from '../db/schema';
import { HttpError } from '../routes/errors';

const VERIFICATION_TTL_MS = 24 * 60 * 60 * 1000;

/** A new session; `token` is the bearer secret, stored only as its hash. */
export interface NewSession {
  id: string;
  token: string;
  expiresAt: Date;
}

/** A parsed signup body (the email already lower-cased). */
export type SignUpInput = Pick<
  PayloadInput<BlawbyCatalog, 'auth.user_signed_up'>,
  'email' | 'name' | 'referralSource' | 'referralCode'
> & { password: string };

/** Options of {@link signUp}. */
export interface SignUpOptions {
  /**
   * Stores this email-verification token (its hash, valid 24 h). The caller
   * mails the link itself: a secret never goes into an event.
   */
  verificationToken?: string;
}

/** Creates a session row and returns its bearer token. */
async function createSession(tx: AppTx, userId: string): Promise<NewSession> {
  const token = newToken();
  const id = newId('sess');
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await tx.insert(sessions).values({ id, userId, tokenHash: hashToken(token), expiresAt });
  return { id, token, expiresAt };
}

/**
 * Creates the user and a first session, publishing `auth.user_signed_up` and
 * `session.created` in the same transaction.
 *
 * @throws HttpError 409 `EMAIL_TAKEN` when an account has this email.
 */
export async function signUp(
  db: AppDb,
  events: RequestEvents<BlawbyCatalog>,
  body: SignUpInput,
  options: SignUpOptions = {},
): Promise<{ userId: string; session: NewSession }> {
  // Hashing is slow: done before the transaction holds a connection.
  const passwordHash = await hashPassword(body.password);
  return db.transaction(async (tx) => {
    const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, body.email));
    if (existing) throw new HttpError(409, 'EMAIL_TAKEN', 'An account with this email exists');
    const userId = newId('user');
    await tx.insert(users).values({ id: userId, email: body.email, name: body.name, passwordHash });
    if (options.verificationToken !== undefined) {
      await tx.insert(verificationTokens).values({
        tokenHash: hashToken(options.verificationToken),
        userId,
        purpose: 'email_verification',
        expiresAt: new Date(Date.now() + VERIFICATION_TTL_MS),
      });
    }
    const session = await createSession(tx, userId);
    const actor = { tx, actor: userId, actorType: 'user' } as const;
    await events.publish(
      'auth.user_signed_up',
      {
        email: body.email,
        name: body.name,
        signupMethod: 'email',
        ...(body.referralSource ? { referralSource: body.referralSource } : {}),
        ...(body.referralCode ? { referralCode: body.referralCode } : {}),
      },
      actor,
    );
    await events.publish(
      'session.created',
      { sessionId: session.id, activeOrganizationId: null, expiresAt: session.expiresAt.toISOString() },
      actor,
    );
    return { userId, session };
  });
}

/**
 * Checks the password and opens a session, publishing `auth.user_logged_in`
 * and `session.created` in the same transaction.
 *
 * @throws HttpError 401 `INVALID_CREDENTIALS`, the same for an unknown email
 * and a wrong password.
 */
export async function logIn(
  db: AppDb,
  events: RequestEvents<BlawbyCatalog>,
  body: { email: string; password: string },
): Promise<NewSession> {
  const [user] = await db.select().from(users).where(eq(users.email, body.email));
  if (!user || !(await verifyPassword(body.password, user.passwordHash))) {
    throw new HttpError(401, 'INVALID_CREDENTIALS', 'Email or password is incorrect');
  }
  return db.transaction(async (tx) => {
    const session = await createSession(tx, user.id);
    const actor = { tx, actor: user.id, actorType: 'user' } as const;
    await events.publish(
      'auth.user_logged_in',
      { email: user.email, sessionId: session.id, method: 'password' },
      actor,
    );
    await events.publish(
      'session.created',
      { sessionId: session.id, activeOrganizationId: null, expiresAt: session.expiresAt.toISOString() },
      actor,
    );
    return session;
  });
}
