/**
 * What bbolt's file commands share: the path argument, opening the file read-only for one command,
 * the output format and line printing.
 */
import { existsSync } from 'node:fs';
import { type DB, open } from '../bolt/db.ts';
import type { Parsed } from './args.ts';
import { CliError, usage } from './errors.ts';
import { type CliIO, type WriteOut, writeOutOf } from './output.ts';

export function needPath(p: Parsed): string {
  const path = p.args[0];
  if (!path) throw usage('path required');
  if (!existsSync(path)) throw new CliError('ERR_FILE_NOT_FOUND', `file not found: ${path}`);
  return path;
}

/** Open read-only (a shared lock: fails with ERR_LOCK_TIMEOUT while a writer process holds the file). */
export function withDB<T>(path: string, fn: (db: DB) => T): T {
  const db = open(path, { readOnly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export async function withDBAsync<T>(path: string, readOnly: boolean, fn: (db: DB) => Promise<T>): Promise<T> {
  const db = open(path, { readOnly });
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

export function outFormat(p: Parsed): WriteOut {
  return writeOutOf(p.flags['write-out']);
}

export function lines(io: CliIO, items: readonly string[]): void {
  if (items.length > 0) io.out(`${items.join('\n')}\n`);
}

/** The value format flag of buckets, keys, get and page. */
export const formatFlag = {
  kind: 'string',
  default: 'auto',
  help: 'value format: auto, ascii-encoded, hex, bytes or redacted',
} as const;
