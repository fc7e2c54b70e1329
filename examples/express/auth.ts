/**
 * Bearer sessions for the Express variant: the same `sessions` table and
 * token hashing as the Fastify app (`../blawby/auth`), read from an Express
 * request.
 */
import { and, eq, gt, isNull } from 'drizzle-orm';
import type { Request } from 'express';
import type { Identity } from '@blawby/event-bus/express';
import { hashToken } from '../blawby/auth/credentials';
import type { AppDb } from '../blawby/db/connect';
import { members, sessions, users } from '../blawby/db/schema';

/** The authenticated caller of a request. */
export interface ExpressCaller {
  userId: string;
  email: string;
  name: string;
  sessionId: string;
  organizationIds: string[];
}

const BEARER = /^Bearer\s+([A-Za-z0-9_-]{20,200})$/;

/** The caller of `req`, or `null` without a live session. */
export async function callerOf(db: AppDb, req: Request): Promise<ExpressCaller | null> {
  const token = req.get('authorization')?.match(BEARER)?.[1];
  if (!token) return null;
  const [row] = await db
    .select({ sessionId: sessions.id, userId: users.id, email: users.email, name: users.name })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(
      and(eq(sessions.tokenHash, hashToken(token)), isNull(sessions.revokedAt), gt(sessions.expiresAt, new Date())),
    )
    .limit(1);
  if (!row) return null;
  const memberships = await db
    .select({ organizationId: members.organizationId })
    .from(members)
    .where(eq(members.userId, row.userId));
  return { ...row, organizationIds: memberships.map((m) => m.organizationId) };
}

/** The identity the events router's `authorize` needs. */
export async function identityOf(db: AppDb, req: Request): Promise<Identity | null> {
  const caller = await callerOf(db, req);
  return caller ? { actor: caller.userId, organizationIds: caller.organizationIds } : null;
}
