/** The event bus the Blawby handlers subscribe to. */
import type { EventBus } from '@blawby/event-bus';
import type { BlawbyCatalog } from '../catalog';

/** The Blawby event bus. */
export type BlawbyBus = EventBus<BlawbyCatalog>;
