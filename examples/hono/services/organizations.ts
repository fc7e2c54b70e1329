/**
 * Organizations, in the unit-of-work style: `createOrganization` and
 * `inviteMembers` are separate services a route calls one after the other.
 * When the second refuses, the first one's rows and its `org.created` event
 * roll back with the request: no handler ever sees an organization that
 * does not exist.
 */
import { and, eq, inArray } from 'drizzle-orm';
import { hashToken, newId, newToken } from '../../blawby/auth/credentials';
import { invitations, members, organizations, users } from '../../blawby/db/schema';
import { HttpError } from '../../blawby/routes/errors';
import type { ServiceDeps } from './accounts';

const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** A parsed organization body. */
export interface CreateOrganizationInput {
  name: string;
  slug: string;
  practiceType: string;
}

/**
 * Creates the organization with the caller as its owner; publishes `org.created`.
 *
 * @throws HttpError 409 `SLUG_TAKEN`.
 */
export async function createOrganization(
  { uow, events }: ServiceDeps,
  caller: { userId: string },
  input: CreateOrganizationInput,
): Promise<{ id: string }> {
  const db = uow.query;
  const taken = await db.select({ id: organizations.id }).from(organizations).where(eq(organizations.slug, input.slug));
  if (taken.length) throw new HttpError(409, 'SLUG_TAKEN', 'This slug is taken');
  const id = newId('org');
  await db.insert(organizations).values({ id, name: input.name, slug: input.slug, practiceType: input.practiceType });
  await db.insert(members).values({ organizationId: id, userId: caller.userId, role: 'owner' });
  await events.publish(
    'org.created',
    { organizationName: input.name, organizationSlug: input.slug, practiceType: input.practiceType, role: 'owner' },
    { actor: caller.userId, actorType: 'user', organizationId: id },
  );
  return { id };
}

/** One invitation to send. */
export interface Invite {
  email: string;
  role: 'admin' | 'member';
}

/**
 * Invites people to an organization; publishes `org.member_invited` for each
 * (the route mails the links after the commit: a token never goes into an event).
 *
 * @throws HttpError 409 `ALREADY_MEMBER` when one of them is a member already.
 */
export async function inviteMembers(
  { uow, events }: ServiceDeps,
  caller: { userId: string },
  organizationId: string,
  invites: readonly Invite[],
): Promise<{ email: string; token: string }[]> {
  if (invites.length === 0) return [];
  const db = uow.query;
  const already = await db
    .select({ email: users.email })
    .from(members)
    .innerJoin(users, eq(users.id, members.userId))
    .where(and(eq(members.organizationId, organizationId), inArray(users.email, invites.map((i) => i.email))));
  if (already.length) throw new HttpError(409, 'ALREADY_MEMBER', 'One of the invited people is already a member');
  const sent: { email: string; token: string }[] = [];
  for (const invite of invites) {
    const invitationId = newId('inv');
    const token = newToken();
    const expiresAt = new Date(Date.now() + INVITATION_TTL_MS);
    await db.insert(invitations).values({
      id: invitationId,
      organizationId,
      email: invite.email,
      role: invite.role,
      tokenHash: hashToken(token),
      invitedBy: caller.userId,
      expiresAt,
    });
    await events.publish(
      'org.member_invited',
      { invitationId, email: invite.email, role: invite.role, expiresAt: expiresAt.toISOString() },
      { actor: caller.userId, actorType: 'user', organizationId },
    );
    sent.push({ email: invite.email, token });
  }
  return sent;
}
