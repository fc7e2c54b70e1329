/**
 * The onboarding flow (start, steps, completion, skip) and the user's profile.
 */
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireCaller } from '../auth/sessions';
import { ONBOARDING_STEPS, onboardingStep } from '../catalog';
import { onboardingProgress, profiles } from '../db/schema';
import type { RouteDeps } from './deps';
import { HttpError, parse, requestEvents } from './http';

const profileBody = z.object({
  displayName: z.string().trim().min(1).max(200),
  phone: z.string().max(40).optional(),
  timezone: z.string().max(64).optional(),
});
const pictureBody = z.object({
  url: z.url(),
  contentType: z.enum(['image/png', 'image/jpeg', 'image/webp']),
  sizeBytes: z.number().int().positive().max(5_000_000),
});

/** Registers the onboarding and profile routes. */
export async function onboardingRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const { db } = deps;

  app.post('/onboarding/start', async (request, reply) => {
    const caller = await requireCaller(db, request);
    await db.transaction(async (tx) => {
      const inserted = await tx
        .insert(onboardingProgress)
        .values({ userId: caller.userId })
        .onConflictDoNothing()
        .returning({ userId: onboardingProgress.userId });
      if (!inserted.length) throw new HttpError(409, 'ALREADY_STARTED', 'Onboarding has already started');
      await requestEvents(request).publish(
        'onboarding.started',
        { steps: [...ONBOARDING_STEPS] },
        { tx, actor: caller.userId, actorType: 'user' },
      );
    });
    return reply.code(201).send({ steps: ONBOARDING_STEPS });
  });

  app.post('/onboarding/steps/:step', async (request) => {
    const caller = await requireCaller(db, request);
    const { step } = parse(z.object({ step: onboardingStep }), request.params, 'INVALID_PARAMS');
    return db.transaction(async (tx) => {
      const [progress] = await tx
        .select()
        .from(onboardingProgress)
        .where(eq(onboardingProgress.userId, caller.userId))
        .for('update');
      if (!progress) throw new HttpError(409, 'NOT_STARTED', 'Start onboarding first');
      if (progress.completedAt || progress.skippedAt) throw new HttpError(409, 'FINISHED', 'Onboarding is over');
      if (progress.completedSteps.includes(step)) return { completedSteps: progress.completedSteps, completed: false };
      const completedSteps = [...progress.completedSteps, step];
      const done = ONBOARDING_STEPS.every((s) => completedSteps.includes(s));
      const now = new Date();
      await tx
        .update(onboardingProgress)
        .set({ completedSteps, ...(done ? { completedAt: now } : {}) })
        .where(eq(onboardingProgress.userId, caller.userId));
      const events = requestEvents(request);
      const actor = { tx, actor: caller.userId, actorType: 'user' } as const;
      await events.publish(
        'onboarding.step_completed',
        { step, completedSteps: completedSteps.length, totalSteps: ONBOARDING_STEPS.length },
        actor,
      );
      if (done) {
        await events.publish(
          'onboarding.completed',
          { steps: [...ONBOARDING_STEPS], durationMs: Math.max(0, now.getTime() - progress.startedAt.getTime()) },
          actor,
        );
      }
      return { completedSteps, completed: done };
    });
  });

  app.post('/onboarding/skip', async (request) => {
    const caller = await requireCaller(db, request);
    const { reason } = parse(z.object({ reason: z.string().max(500).optional() }), request.body);
    return db.transaction(async (tx) => {
      await tx.insert(onboardingProgress).values({ userId: caller.userId }).onConflictDoNothing();
      const [progress] = await tx
        .select()
        .from(onboardingProgress)
        .where(eq(onboardingProgress.userId, caller.userId))
        .for('update');
      if (!progress || progress.completedAt || progress.skippedAt) {
        throw new HttpError(409, 'FINISHED', 'Onboarding is over');
      }
      await tx
        .update(onboardingProgress)
        .set({ skippedAt: new Date() })
        .where(eq(onboardingProgress.userId, caller.userId));
      const remainingSteps = ONBOARDING_STEPS.filter((s) => !progress.completedSteps.includes(s));
      await requestEvents(request).publish(
        'onboarding.skipped',
        { remainingSteps, ...(reason ? { reason } : {}) },
        { tx, actor: caller.userId, actorType: 'user' },
      );
      return { skipped: true, remainingSteps };
    });
  });

  app.put('/profile', async (request) => {
    const caller = await requireCaller(db, request);
    const body = parse(profileBody, request.body);
    return db.transaction(async (tx) => {
      const [existing] = await tx.select().from(profiles).where(eq(profiles.userId, caller.userId)).for('update');
      const events = requestEvents(request);
      const actor = { tx, actor: caller.userId, actorType: 'user' } as const;
      const row = { displayName: body.displayName, phone: body.phone ?? null, timezone: body.timezone ?? null };
      if (!existing) {
        await tx.insert(profiles).values({ userId: caller.userId, ...row });
        await events.publish(
          'profile.created',
          {
            displayName: body.displayName,
            ...(body.phone ? { phone: body.phone } : {}),
            ...(body.timezone ? { timezone: body.timezone } : {}),
          },
          actor,
        );
        return { created: true, changedFields: [] };
      }
      const changedFields = (Object.keys(row) as (keyof typeof row)[]).filter((k) => existing[k] !== row[k]);
      if (changedFields.length) {
        await tx
          .update(profiles)
          .set({ ...row, updatedAt: new Date() })
          .where(eq(profiles.userId, caller.userId));
        await events.publish('profile.updated', { changedFields }, actor);
      }
      return { created: false, changedFields };
    });
  });

  app.post('/profile/picture', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const body = parse(pictureBody, request.body);
    await db.transaction(async (tx) => {
      const updated = await tx
        .update(profiles)
        .set({ pictureUrl: body.url, updatedAt: new Date() })
        .where(eq(profiles.userId, caller.userId))
        .returning({ userId: profiles.userId });
      if (!updated.length) throw new HttpError(409, 'NO_PROFILE', 'Create the profile first');
      await requestEvents(request).publish('profile.picture_uploaded', body, {
        tx,
        actor: caller.userId,
        actorType: 'user',
      });
    });
    return reply.code(201).send({ url: body.url });
  });
}
