/**
 * Bearer sessions: `Authorization: Bearer <token>`, the token's SHA-256 in
 * the `sessions` table. An expired session presented once is marked and
 * `session.expired` is published.
 */
import { and, eq, isNull } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { AppDb } from '../db/connect';
import { members, sessions, users } from '../db/schema';
import type { RequestEvents } from '@blawby/event-bus/fastify';
import type { BlawbyCatalog, MemberRole } from '../catalog';
import { hashToken } from './credentials';
import { HttpError, requestEvents } from '../routes/http';

/** Session lifetime: 7 days. */
export const SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** The authenticated caller. */
export interface Caller {
  userId: string;
  email: string;
  name: string;
  emailVerified: boolean;
  sessionId: string;
  activeOrganizationId: string | null;
  /** Organization id to the caller's role there. */
  memberships: Map<string, MemberRole>;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization?.match(/^Bearer\s+([A-Za-z0-9_-]{20,200})$/)?.[1];
}

/**
 * The caller holding `authorization` (a bearer header), or `null`. Works for
 * any framework: `events` publishes `session.expired` for an expired session.
 */
export async function callerOfToken(
  db: AppDb,
  authorization: string | undefined,
  events: RequestEvents<BlawbyCatalog>,
): Promise<Caller | null> {
  const token = bearerToken(authorization);
  if (!token) return null;
  const [row] = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.tokenHash, hashToken(token)), isNull(sessions.revokedAt)))
    .limit(1);
  if (!row) return null;
  if (row.session.expiresAt.getTime() <= Date.now()) {
    await db.transaction(async (tx) => {
      const expired = await tx
        .update(sessions)
        .set({ revokedAt: new Date() })
        .where(and(eq(sessions.id, row.session.id), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id });
      if (expired.length) {
        await events.publish(
          'session.expired',
          { sessionId: row.session.id, expiredAt: row.session.expiresAt.toISOString() },
          { tx, actor: row.user.id, actorType: 'user' },
        );
      }
    });
    return null;
  }
  const rows = await db
    .select({ organizationId: members.organizationId, role: members.role })
    .from(members)
    .where(eq(members.userId, row.user.id));
  return {
    userId: row.user.id,
    email: row.user.email,
    name: row.user.name,
    emailVerified: row.user.emailVerifiedAt !== null,
    sessionId: row.session.id,
    activeOrganizationId: row.session.activeOrganizationId,
    memberships: new Map(rows.map((r) => [r.organizationId, r.role])),
  };
}

/** The caller of a Fastify request, or `null` when it carries no valid session. */
export function findCaller(db: AppDb, request: FastifyRequest): Promise<Caller | null> {
  return callerOfToken(db, request.headers.authorization, requestEvents(request));
}

/** The caller, or a 401. */
export async function requireCaller(db: AppDb, request: FastifyRequest): Promise<Caller> {
  const caller = await findCaller(db, request);
  if (!caller) throw new HttpError(401, 'UNAUTHORIZED', 'A valid bearer session is required');
  return caller;
}

/**
 * Checks that the caller belongs to the organization (with one of `roles`
 * when given); otherwise publishes `org.access_denied` and answers 403.
 */
export async function requireMember(
  request: FastifyRequest,
  caller: Caller,
  organizationId: string,
  action: string,
  roles?: readonly MemberRole[],
): Promise<MemberRole> {
  const role = caller.memberships.get(organizationId);
  if (role && (!roles || roles.includes(role))) return role;
  await requestEvents(request).publish(
    'org.access_denied',
    {
      organizationId,
      resource: request.routeOptions.url ?? request.url,
      action,
      reason: role ? 'insufficient_role' : 'not_a_member',
      method: request.method,
    },
    { actor: caller.userId, actorType: 'user', organizationId },
  );
  throw new HttpError(403, 'FORBIDDEN', role ? 'Your role does not allow this' : 'Not a member of this organization');
}
