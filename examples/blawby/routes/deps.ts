/** What the route modules need. */
import type { AppDb } from '../db/connect';
import type { EmailSender } from '../sinks/email';
import type { StripeConnect } from '../stripe/connect';

/** Dependencies of the route modules. */
export interface RouteDeps {
  db: AppDb;
  /** Sends the emails that carry secrets (verification, invitation, password reset) straight from the route. */
  email: EmailSender;
  stripe: StripeConnect;
  /** Signing secret of the Stripe webhook endpoint. */
  stripeWebhookSecret: string;
  /** Accepted clock difference of Stripe signatures (default 300 s). */
  stripeToleranceSeconds?: number;
  /** Base URL of the web app, for links in emails. */
  appUrl: string;
}
