/**
 * Organizations (practices) and their members: create, update, delete,
 * switch the session's active organization, invite, join, change a role,
 * remove, leave. Access checks publish `org.access_denied`.
 */
import { and, eq, gt, isNull } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { hashToken, newId, newToken } from '../auth/credentials';
import { requireCaller, requireMember } from '../auth/sessions';
import { invitations, members, organizations, sessions, users } from '../db/schema';
import { createOrganization } from '../services/organizations';
import type { RouteDeps } from './deps';
import { HttpError, parse, requestEvents } from './http';

const slug = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'lower-case words separated by dashes')
  .max(60);
const createBody = z.object({
  name: z.string().trim().min(1).max(200),
  slug,
  practiceType: z.string().min(1).max(100),
});
const updateBody = z
  .object({ name: z.string().trim().min(1).max(200).optional(), practiceType: z.string().min(1).max(100).optional() })
  .refine((b) => b.name !== undefined || b.practiceType !== undefined, 'nothing to update');
const orgParams = z.object({ orgId: z.string().min(1).max(100) });
const memberParams = orgParams.extend({ userId: z.string().min(1).max(100) });
const inviteBody = z.object({ email: z.email().transform((e) => e.toLowerCase()), role: z.enum(['admin', 'member']) });
const roleBody = z.object({ role: z.enum(['admin', 'member']) });

const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** Registers the organization and member routes. */
export async function organizationRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const { db } = deps;

  app.post('/orgs', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const body = parse(createBody, request.body);
    return reply.code(201).send(await createOrganization(db, requestEvents(request), caller, body));
  });

  app.patch('/orgs/:orgId', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    const body = parse(updateBody, request.body);
    await requireMember(request, caller, orgId, 'update', ['owner', 'admin']);
    return db.transaction(async (tx) => {
      const [org] = await tx.select().from(organizations).where(eq(organizations.id, orgId)).for('update');
      if (!org) throw new HttpError(404, 'NOT_FOUND', 'No such organization');
      const changedFields = [
        ...(body.name !== undefined && body.name !== org.name ? ['name'] : []),
        ...(body.practiceType !== undefined && body.practiceType !== org.practiceType ? ['practiceType'] : []),
      ];
      if (changedFields.length) {
        await tx
          .update(organizations)
          .set({ name: body.name ?? org.name, practiceType: body.practiceType ?? org.practiceType })
          .where(eq(organizations.id, orgId));
        await requestEvents(request).publish(
          'org.updated',
          { changedFields },
          { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
        );
      }
      return { changedFields };
    });
  });

  app.delete('/orgs/:orgId', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    await requireMember(request, caller, orgId, 'delete', ['owner']);
    await db.transaction(async (tx) => {
      const [org] = await tx.delete(organizations).where(eq(organizations.id, orgId)).returning();
      if (!org) throw new HttpError(404, 'NOT_FOUND', 'No such organization');
      await tx.update(sessions).set({ activeOrganizationId: null }).where(eq(sessions.activeOrganizationId, orgId));
      await requestEvents(request).publish(
        'org.deleted',
        { organizationName: org.name, organizationSlug: org.slug },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
    });
    return reply.code(204).send();
  });

  app.post('/orgs/:orgId/switch', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    await requireMember(request, caller, orgId, 'switch');
    await db.transaction(async (tx) => {
      await tx.update(sessions).set({ activeOrganizationId: orgId }).where(eq(sessions.id, caller.sessionId));
      await requestEvents(request).publish(
        'org.switched',
        { sessionId: caller.sessionId, fromOrganizationId: caller.activeOrganizationId, toOrganizationId: orgId },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
    });
    return { activeOrganizationId: orgId };
  });

  app.post('/orgs/:orgId/invitations', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    const body = parse(inviteBody, request.body);
    await requireMember(request, caller, orgId, 'invite', ['owner', 'admin']);
    const token = newToken();
    const id = newId('inv');
    const expiresAt = new Date(Date.now() + INVITATION_TTL_MS);
    const org = await db.transaction(async (tx) => {
      const [found] = await tx.select().from(organizations).where(eq(organizations.id, orgId));
      if (!found) throw new HttpError(404, 'NOT_FOUND', 'No such organization');
      const already = await tx
        .select({ userId: members.userId })
        .from(members)
        .innerJoin(users, eq(users.id, members.userId))
        .where(and(eq(members.organizationId, orgId), eq(users.email, body.email)));
      if (already.length) throw new HttpError(409, 'ALREADY_MEMBER', 'This person is already a member');
      await tx.insert(invitations).values({
        id,
        organizationId: orgId,
        email: body.email,
        role: body.role,
        tokenHash: hashToken(token),
        invitedBy: caller.userId,
        expiresAt,
      });
      await requestEvents(request).publish(
        'org.member_invited',
        { invitationId: id, email: body.email, role: body.role, expiresAt: expiresAt.toISOString() },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
      return found;
    });
    await deps.email.send({
      to: body.email,
      subject: `${caller.name} invited you to ${org.name} on Blawby`,
      template: 'invitation',
      text: `Join ${org.name} as ${body.role}:\n\n${deps.appUrl}/invitations/accept?token=${token}\n`,
    });
    return reply.code(201).send({ invitationId: id, expiresAt: expiresAt.toISOString() });
  });

  app.post('/invitations/accept', async (request) => {
    const caller = await requireCaller(db, request);
    const { token } = parse(z.object({ token: z.string().min(20).max(200) }), request.body);
    return db.transaction(async (tx) => {
      const [invitation] = await tx
        .update(invitations)
        .set({ acceptedAt: new Date() })
        .where(
          and(
            eq(invitations.tokenHash, hashToken(token)),
            isNull(invitations.acceptedAt),
            gt(invitations.expiresAt, new Date()),
          ),
        )
        .returning();
      if (!invitation) throw new HttpError(400, 'INVALID_TOKEN', 'The invitation is invalid or has expired');
      if (invitation.email !== caller.email) {
        throw new HttpError(403, 'WRONG_ACCOUNT', 'This invitation was sent to another email address');
      }
      await tx
        .insert(members)
        .values({ organizationId: invitation.organizationId, userId: caller.userId, role: invitation.role })
        .onConflictDoNothing();
      await requestEvents(request).publish(
        'org.member_joined',
        { userId: caller.userId, email: caller.email, role: invitation.role, invitationId: invitation.id },
        { tx, actor: caller.userId, actorType: 'user', organizationId: invitation.organizationId },
      );
      return { organizationId: invitation.organizationId, role: invitation.role };
    });
  });

  app.patch('/orgs/:orgId/members/:userId', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId, userId } = parse(memberParams, request.params, 'INVALID_PARAMS');
    const { role } = parse(roleBody, request.body);
    await requireMember(request, caller, orgId, 'change_role', ['owner', 'admin']);
    return db.transaction(async (tx) => {
      const [member] = await tx
        .select()
        .from(members)
        .where(and(eq(members.organizationId, orgId), eq(members.userId, userId)))
        .for('update');
      if (!member) throw new HttpError(404, 'NOT_FOUND', 'No such member');
      if (member.role === 'owner') throw new HttpError(409, 'OWNER_ROLE', "The owner's role cannot be changed");
      if (member.role !== role) {
        await tx
          .update(members)
          .set({ role })
          .where(and(eq(members.organizationId, orgId), eq(members.userId, userId)));
        await requestEvents(request).publish(
          'org.member_role_changed',
          { userId, previousRole: member.role, newRole: role },
          { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
        );
      }
      return { userId, role };
    });
  });

  app.delete('/orgs/:orgId/members/:userId', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId, userId } = parse(memberParams, request.params, 'INVALID_PARAMS');
    await requireMember(request, caller, orgId, 'remove_member', ['owner', 'admin']);
    await db.transaction(async (tx) => {
      const [member] = await tx
        .select()
        .from(members)
        .where(and(eq(members.organizationId, orgId), eq(members.userId, userId)));
      if (!member) throw new HttpError(404, 'NOT_FOUND', 'No such member');
      if (member.role === 'owner') throw new HttpError(409, 'OWNER_ROLE', 'The owner cannot be removed');
      await tx.delete(members).where(and(eq(members.organizationId, orgId), eq(members.userId, userId)));
      await requestEvents(request).publish(
        'org.member_removed',
        { userId, role: member.role },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
    });
    return reply.code(204).send();
  });

  app.post('/orgs/:orgId/leave', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    const role = await requireMember(request, caller, orgId, 'leave');
    if (role === 'owner') throw new HttpError(409, 'OWNER_ROLE', 'The owner cannot leave; delete the organization');
    await db.transaction(async (tx) => {
      await tx.delete(members).where(and(eq(members.organizationId, orgId), eq(members.userId, caller.userId)));
      await requestEvents(request).publish(
        'org.member_left',
        { userId: caller.userId, role },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
    });
    return reply.code(204).send();
  });
}
