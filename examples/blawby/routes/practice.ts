/**
 * Practice details of an organization: the first save publishes
 * `practice.details_created`; later saves `practice.details_updated`, plus
 * `practice.specialties_updated` and `practice.contact_info_updated` when
 * those parts changed.
 */
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireCaller, requireMember } from '../auth/sessions';
import { practiceDetails } from '../db/schema';
import type { RouteDeps } from './deps';
import { parse, requestEvents } from './http';

const body = z.object({
  businessName: z.string().trim().min(1).max(200),
  specialties: z.array(z.string().trim().min(1).max(100)).max(50),
  businessEmail: z.email().optional(),
  businessPhone: z.string().max(40).optional(),
  website: z.url().optional(),
});

const CONTACT_FIELDS = ['businessEmail', 'businessPhone', 'website'] as const;

/** Registers the practice details routes. */
export async function practiceRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const { db } = deps;

  app.get('/orgs/:orgId/practice', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(z.object({ orgId: z.string().min(1) }), request.params, 'INVALID_PARAMS');
    await requireMember(request, caller, orgId, 'read_practice');
    const [row] = await db.select().from(practiceDetails).where(eq(practiceDetails.organizationId, orgId));
    return row ?? null;
  });

  app.put('/orgs/:orgId/practice', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(z.object({ orgId: z.string().min(1) }), request.params, 'INVALID_PARAMS');
    const input = parse(body, request.body);
    await requireMember(request, caller, orgId, 'update_practice', ['owner', 'admin']);
    const row = {
      businessName: input.businessName,
      specialties: input.specialties,
      businessEmail: input.businessEmail ?? null,
      businessPhone: input.businessPhone ?? null,
      website: input.website ?? null,
    };
    return db.transaction(async (tx) => {
      const events = requestEvents(request);
      const options = { tx, actor: caller.userId, actorType: 'user', organizationId: orgId } as const;
      const [existing] = await tx
        .select()
        .from(practiceDetails)
        .where(eq(practiceDetails.organizationId, orgId))
        .for('update');
      if (!existing) {
        await tx.insert(practiceDetails).values({ organizationId: orgId, ...row });
        await events.publish(
          'practice.details_created',
          {
            businessName: input.businessName,
            specialties: input.specialties,
            ...(input.businessEmail ? { businessEmail: input.businessEmail } : {}),
            ...(input.businessPhone ? { businessPhone: input.businessPhone } : {}),
            ...(input.website ? { website: input.website } : {}),
          },
          options,
        );
        return { created: true, changedFields: [] };
      }
      const specialtiesChanged = JSON.stringify(existing.specialties) !== JSON.stringify(row.specialties);
      const changedFields = [
        ...(existing.businessName !== row.businessName ? ['businessName'] : []),
        ...(specialtiesChanged ? ['specialties'] : []),
        ...CONTACT_FIELDS.filter((f) => existing[f] !== row[f]),
      ];
      if (!changedFields.length) return { created: false, changedFields };
      await tx
        .update(practiceDetails)
        .set({ ...row, updatedAt: new Date() })
        .where(eq(practiceDetails.organizationId, orgId));
      await events.publish('practice.details_updated', { changedFields }, options);
      if (specialtiesChanged) {
        await events.publish(
          'practice.specialties_updated',
          { previous: existing.specialties, current: row.specialties },
          options,
        );
      }
      const contactChanged = CONTACT_FIELDS.filter((f) => changedFields.includes(f));
      if (contactChanged.length) {
        await events.publish('practice.contact_info_updated', { changedFields: contactChanged }, options);
      }
      return { created: false, changedFields };
    });
  });
}
