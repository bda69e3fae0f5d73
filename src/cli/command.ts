/** A CLI subcommand: its name, help and flags as `boltkv help` prints them, and what it runs. */
import type { FlagSpecs, Parsed } from './args.ts';
import type { CliIO } from './output.ts';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpecs;
  run(p: Parsed, io: CliIO): Promise<void> | void;
}
