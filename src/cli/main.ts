#!/usr/bin/env node
/**
 * The `boltkv` command: bbolt's file commands, backup and defrag on a database file, and `serve`.
 * `run(argv, io)` does the work and returns the exit code, so tests drive it in process; the
 * binary wraps it. Errors print one line, `Error: CODE: message`, and exit non-zero (2 for usage).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BoltkvError } from '../errors.ts';
import { flagHelp, parseArgs } from './args.ts';
import { BOLT_COMMANDS } from './bolt-commands.ts';
import type { Command } from './command.ts';
import { ETCD_COMMANDS, ETCD_ONLY, wantsEtcd } from './etcd-commands.ts';
import type { CliIO } from './output.ts';
import { runServe, serveHelp } from '../server/index.ts';

const COMMANDS: readonly Command[] = [...BOLT_COMMANDS, ...ETCD_COMMANDS.filter((c) => ETCD_ONLY.has(c.name))];

/** bbolt's form of a command on a file, or etcdctl's when the command is etcdctl's only or names --data-dir/--endpoints. */
function findCommand(name: string, rest: readonly string[]): Command | undefined {
  if (ETCD_ONLY.has(name) || wantsEtcd(rest)) {
    const c = ETCD_COMMANDS.find((x) => x.name === name);
    if (c) return c;
  }
  return BOLT_COMMANDS.find((c) => c.name === name);
}

function topHelp(): string {
  const rows = COMMANDS.map((c) => `    ${c.name.padEnd(12)}${c.summary}`);
  const etcdRows = ETCD_COMMANDS.filter((c) => !ETCD_ONLY.has(c.name)).map(
    (c) => `    ${c.name.padEnd(12)}${c.summary}`,
  );
  return [
    'boltkv: operate boltkv / bbolt database files',
    '',
    'Usage:',
    '    boltkv <command> [arguments]',
    '',
    'The commands are:',
    ...rows,
    '',
    "With --data-dir DIR, these take etcdctl's form instead:",
    ...etcdRows,
    '',
    "    serve       serve etcd's JSON API from a data directory (etcd's flags; see boltkv serve --help)",
    '',
    'Use "boltkv <command> --help" for more information about a command.',
    '',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, '', c.summary, '', 'Flags:', flagHelp(c.flags), ''].join('\n');
}

export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    if (name === 'help' && rest[0] === 'serve') {
      io.out(serveHelp());
      return 0;
    }
    const sub = name === 'help' && rest[0] !== undefined ? findCommand(rest[0], rest.slice(1)) : undefined;
    io.out(sub ? commandHelp(sub) : topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === 'serve') {
    // The server handles its own flags, help, signals and clean shutdown.
    return runServe(rest, { out: io.out, err: io.err, signal: io.signal, handleSignals: io.signal === undefined });
  }
  const cmd = findCommand(name, rest);
  if (!cmd) {
    io.err(`Error: ERR_USAGE: unknown command: ${name} (see boltkv --help)\n`);
    return 2;
  }
  try {
    const parsed = parseArgs(rest, cmd.flags);
    if (parsed.help) {
      io.out(commandHelp(cmd));
      return 0;
    }
    await cmd.run(parsed, io);
    return 0;
  } catch (err) {
    if (err instanceof BoltkvError) {
      io.err(`Error: ${err.code}: ${err.message}\n`);
      return err.code === 'ERR_USAGE' ? 2 : 1;
    }
    const e = err as NodeJS.ErrnoException;
    io.err(`Error: ERR_IO: ${e?.message ?? String(err)}\n`.replace(/\n(?!$)/g, ' '));
    return 1;
  }
}

function processIO(serving: boolean): CliIO {
  if (serving) {
    // runServe installs its own SIGTERM/SIGINT handling (a clean, possibly longer, shutdown).
    return {
      out: (s) => void process.stdout.write(s),
      err: (s) => void process.stderr.write(s),
      isTTY: process.stderr.isTTY === true,
    };
  }
  const stop = new AbortController();
  // A watch ends cleanly on the signal; anything else still stops promptly.
  const interrupt = (): void => {
    stop.abort();
    setTimeout(() => process.exit(130), 500).unref();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  return {
    signal: stop.signal,
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    isTTY: process.stderr.isTTY === true,
    stdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  run(process.argv.slice(2), processIO(process.argv[2] === 'serve')).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`Error: ERR_PANIC: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
