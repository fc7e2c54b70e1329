/**
 * The Blawby backend's own tables (drizzle-orm definitions). The event bus's
 * tables (`events` and its delivery state) come from `@blawby/event-bus/postgres`;
 * the DDL of these is in `./migrate.ts`.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

/** Accounts. Passwords are scrypt hashes (`salt:hash`, hex). */
export const users = pgTable('users', {
  id: text('id').primaryKey(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  passwordHash: text('password_hash').notNull(),
  emailVerifiedAt: timestamp('email_verified_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Bearer sessions; only a SHA-256 of the token is stored. */
export const sessions = pgTable('sessions', {
  id: text('id').primaryKey(),
  userId: text('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull().unique(),
  activeOrganizationId: text('active_organization_id'),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** One-time tokens for email verification and password reset (SHA-256 stored). */
export const verificationTokens = pgTable('verification_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  userId: text('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['email_verification', 'password_reset'] }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
});

/** Profile of a user (one row once created). */
export const profiles = pgTable('profiles', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  displayName: text('display_name').notNull(),
  phone: text('phone'),
  timezone: text('timezone'),
  pictureUrl: text('picture_url'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Onboarding progress of a user. */
export const onboardingProgress = pgTable('onboarding_progress', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  completedSteps: jsonb('completed_steps')
    .$type<string[]>()
    .notNull()
    .default(sql`'[]'::jsonb`),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  completedAt: timestamp('completed_at', { withTimezone: true }),
  skippedAt: timestamp('skipped_at', { withTimezone: true }),
});

/** Practices (organizations). */
export const organizations = pgTable('organizations', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  slug: text('slug').notNull().unique(),
  practiceType: text('practice_type').notNull(),
  createdAt: createdAt(),
});

/** Membership of a user in an organization. */
export const members = pgTable(
  'members',
  {
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: text('role', { enum: ['owner', 'admin', 'member'] }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.userId] }), index('members_user_idx').on(t.userId)],
);

/** Pending and accepted invitations (SHA-256 of the token stored). */
export const invitations = pgTable('invitations', {
  id: text('id').primaryKey(),
  organizationId: text('organization_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  email: text('email').notNull(),
  role: text('role', { enum: ['admin', 'member'] }).notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  invitedBy: text('invited_by').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  acceptedAt: timestamp('accepted_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Practice details of an organization. */
export const practiceDetails = pgTable('practice_details', {
  organizationId: text('organization_id')
    .primaryKey()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  businessName: text('business_name').notNull(),
  specialties: jsonb('specialties').$type<string[]>().notNull(),
  businessEmail: text('business_email'),
  businessPhone: text('business_phone'),
  website: text('website'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** The Stripe connected account of an organization, as last reported by Stripe. */
export const stripeAccounts = pgTable('stripe_accounts', {
  id: text('id').primaryKey(),
  organizationId: text('organization_id')
    .notNull()
    .unique()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  email: text('email').notNull(),
  country: text('country').notNull(),
  chargesEnabled: boolean('charges_enabled').notNull().default(false),
  payoutsEnabled: boolean('payouts_enabled').notNull().default(false),
  detailsSubmitted: boolean('details_submitted').notNull().default(false),
  currentlyDue: jsonb('currently_due')
    .$type<string[]>()
    .notNull()
    .default(sql`'[]'::jsonb`),
  capabilities: jsonb('capabilities')
    .$type<Record<string, string>>()
    .notNull()
    .default(sql`'{}'::jsonb`),
  onboardingCompletedAt: timestamp('onboarding_completed_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Every Stripe webhook event, stored once by Stripe's event id. */
export const stripeEvents = pgTable('stripe_events', {
  id: text('id').primaryKey(),
  type: text('type').notNull(),
  accountId: text('account_id'),
  payload: jsonb('payload').notNull(),
  status: text('status', { enum: ['received', 'processed', 'failed'] }).notNull(),
  attempts: integer('attempts').notNull().default(1),
  lastError: text('last_error'),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  processedAt: timestamp('processed_at', { withTimezone: true }),
});

/** Payment sessions created through the API and payments reported by Stripe. */
export const payments = pgTable('payments', {
  id: text('id').primaryKey(),
  organizationId: text('organization_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: ['session', 'payment_intent', 'refund'] }).notNull(),
  amount: bigint('amount', { mode: 'number' }).notNull(),
  currency: text('currency').notNull(),
  customerEmail: text('customer_email'),
  status: text('status').notNull(),
  createdAt: createdAt(),
});

/** The analytics sink of the default tracker: one row per tracked event or conversion. */
export const analyticsEvents = pgTable(
  'analytics_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    kind: text('kind', { enum: ['track', 'conversion'] }).notNull(),
    name: text('name').notNull(),
    userId: text('user_id'),
    organizationId: text('organization_id'),
    properties: jsonb('properties').$type<Record<string, unknown>>().notNull(),
    value: integer('value'),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('analytics_events_dedupe_idx').on(t.dedupeKey), index('analytics_events_name_idx').on(t.name)],
);

/** Every table, for `drizzle(client, { schema })`. */
export const schema = {
  users,
  sessions,
  verificationTokens,
  profiles,
  onboardingProgress,
  organizations,
  members,
  invitations,
  practiceDetails,
  stripeAccounts,
  stripeEvents,
  payments,
  analyticsEvents,
};
