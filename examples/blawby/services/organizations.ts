/**
 * Organization creation, shared by the Fastify routes
 * (`../routes/organizations.ts`) and the Express variant
 * (`../../express/app.ts`). `org.created` is published in the transaction
 * that writes the organization and its owner.
 */
import { eq } from 'drizzle-orm';
// A type only: the same `RequestEvents` as '@blawby/event-bus/express' exports.
import type { RequestEvents } from '@blawby/event-bus/fastify';
import { newId } from '../auth/credentials';
import type { BlawbyCatalog } from '../catalog';
import type { AppDb } from '../db/connect';
import { members, organizations } from '../db/schema';
import { HttpError } from '../routes/errors';

/** A parsed organization-creation body. */
export interface CreateOrganizationInput {
  name: string;
  slug: string;
  practiceType: string;
}

/**
 * Creates the organization with `caller` as its owner and publishes
 * `org.created`. Resolves with what the API answers: `{ id, name, slug }`.
 *
 * @throws HttpError 409 `SLUG_TAKEN` when another organization has the slug.
 */
export async function createOrganization(
  db: AppDb,
  events: RequestEvents<BlawbyCatalog>,
  caller: { userId: string },
  body: CreateOrganizationInput,
): Promise<{ id: string; name: string; slug: string }> {
  const id = newId('org');
  await db.transaction(async (tx) => {
    const taken = await tx.select({ id: organizations.id }).from(organizations).where(eq(organizations.slug, body.slug));
    if (taken.length) throw new HttpError(409, 'SLUG_TAKEN', 'This slug is taken');
    await tx.insert(organizations).values({ id, name: body.name, slug: body.slug, practiceType: body.practiceType });
    await tx.insert(members).values({ organizationId: id, userId: caller.userId, role: 'owner' });
    await events.publish(
      'org.created',
      { organizationName: body.name, organizationSlug: body.slug, practiceType: body.practiceType, role: 'owner' },
      { tx, actor: caller.userId, actorType: 'user', organizationId: id },
    );
  });
  return { id, name: body.name, slug: body.slug };
}
