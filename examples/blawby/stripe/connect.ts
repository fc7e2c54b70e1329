/**
 * The Stripe Connect calls the backend makes, behind a port. The example
 * ships an offline implementation (ids made locally, Stripe-shaped), since
 * talking to Stripe needs an API key; a production one calls
 * `POST /v1/accounts` and `POST /v1/account_links`.
 */
import { randomBytes } from 'node:crypto';

/** A connected account as created. */
export interface CreatedAccount {
  id: string;
  chargesEnabled: boolean;
  payoutsEnabled: boolean;
  detailsSubmitted: boolean;
}

/** Port: Stripe Connect. */
export interface StripeConnect {
  createAccount(input: { email: string; country: string; organizationId: string }): Promise<CreatedAccount>;
  /** A hosted onboarding link for the account. */
  createAccountLink(accountId: string): Promise<{ url: string; expiresAt: Date }>;
}

function stripeId(prefix: string): string {
  return `${prefix}_${randomBytes(12)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, '')}`;
}

/** An offline Stripe Connect: makes Stripe-shaped ids and links without calling Stripe. */
export function offlineStripeConnect(baseUrl = 'https://connect.stripe.com/setup/e'): StripeConnect {
  return {
    async createAccount() {
      return { id: stripeId('acct'), chargesEnabled: false, payoutsEnabled: false, detailsSubmitted: false };
    },
    async createAccountLink(accountId) {
      return { url: `${baseUrl}/${accountId}/${stripeId('link')}`, expiresAt: new Date(Date.now() + 5 * 60_000) };
    },
  };
}

/** A new Stripe-shaped id (`cs_…`, `pi_…`). */
export { stripeId };
