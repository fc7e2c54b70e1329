/**
 * The command table. Adding a command is one file here that exports a
 * `Command` (see `../command.ts`) and one line in this list; `--help`, the
 * command list and option parsing all come from the table.
 */
import type { Command } from '../command';
import { catalogExport } from './catalog-export';
import { catalogImport } from './catalog-import';
import { dashboard } from './dashboard';
import { dlqDiscard } from './dlq-discard';
import { dlqList } from './dlq-list';
import { dlqRedrive } from './dlq-redrive';
import { dlqShow } from './dlq-show';
import { health } from './health';
import { migrate } from './migrate';
import { purge } from './purge';
import { replay } from './replay';
import { stats } from './stats';
import { tail } from './tail';

/** Every command, in the order `event-bus --help` lists them. */
export const COMMANDS: readonly Command[] = [
  migrate,
  health,
  stats,
  tail,
  replay,
  dlqList,
  dlqShow,
  dlqRedrive,
  dlqDiscard,
  purge,
  dashboard,
  catalogExport,
  catalogImport,
];
