/**
 * Child process of test/bolt/corrupt.test.ts. Runs corruption cases one by one in its own
 * process so the parent can bound each case in time and survive a hang or a crash of the engine:
 * it prints `S <i>` before case i and `R <json>` after it; the parent kills us if a case overruns.
 *
 * Usage: node --import tsx test/support/corrupt-runner.ts <cases.json> <first case index>
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoltError, open } from '../../src/bolt/index.ts';
import { FaultyDisk } from './faulty-fs.ts';
import { dumpTx, readEverything } from './bolt-ops.ts';
import { canon } from './workload.ts';

export type Mutation =
  | { kind: 'flip'; at: number[]; xor: number[] }
  | { kind: 'set'; at: number; hex: string }
  | { kind: 'truncate'; length: number }
  /** Misbehave on purpose, to prove the parent's watchdog catches hangs and dead processes. */
  | { kind: 'selftest'; what: 'hang' | 'exit' | 'throw' };

export interface CorruptCase {
  name: string;
  base: string;
  mutations: Mutation[];
  /** Also report the content (canonical dump) when it can be read. */
  wantContent?: boolean;
  /** Open read-only (no freelist load, no writes) instead of read-write. */
  readOnly?: boolean;
}

export interface CaseFile {
  bases: Record<string, string>; // base64 file images
  cases: CorruptCase[];
}

export interface CaseResult {
  i: number;
  /** 'ok' or the BoltError code open threw. */
  open: string;
  problems: string[];
  /** 'ok', or the BoltError code a read threw. */
  read: string;
  /** 'ok', 'skipped' (read-only), or the BoltError code a small write transaction threw. */
  write: string;
  /** sha256 of the canonical dump (short), when the case asked for content and it was readable. */
  content?: string;
  /** Anything that breaks the contract: a non-BoltError, a Panic, check() throwing. */
  defects: string[];
}

const PATH = '/corrupt.db';

/** Short digest of a canonical dump: contents can be megabytes, results should stay small. */
export function contentHash(canonical: string): string {
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export function applyMutations(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let img = base.slice();
  for (const m of mutations) {
    if (m.kind === 'flip') {
      m.at.forEach((at, j) => {
        if (at < img.length) img[at]! ^= m.xor[j]!;
      });
    } else if (m.kind === 'set') {
      img.set(Buffer.from(m.hex, 'hex'), m.at);
    } else if (m.kind === 'truncate') {
      img = img.slice(0, m.length);
    }
  }
  return img;
}

function describe(err: unknown): string {
  return err instanceof Error
    ? `${err.name}: ${err.message}\n${err.stack?.split('\n').slice(1, 6).join('\n')}`
    : String(err);
}

/** A BoltError that is not a Panic; corrupt input is not a broken invariant of ours. */
function typed(err: unknown, where: string, defects: string[]): string {
  if (err instanceof BoltError && err.code !== 'ERR_PANIC') return err.code;
  defects.push(`${where}: ${describe(err)}`);
  return err instanceof BoltError ? err.code : 'NOT_A_BOLT_ERROR';
}

export function runCase(i: number, c: CorruptCase, base: Uint8Array): CaseResult {
  const r: CaseResult = { i, open: 'ok', problems: [], read: 'ok', write: c.readOnly ? 'skipped' : 'ok', defects: [] };
  for (const m of c.mutations) {
    if (m.kind !== 'selftest') continue;
    if (m.what === 'hang') for (;;);
    if (m.what === 'exit') process.exit(70);
    throw new TypeError('selftest: an uncaught non-boltkv error');
  }
  const disk = new FaultyDisk({ files: { [PATH]: applyMutations(base, c.mutations) } });
  let db;
  try {
    db = open(PATH, { fileSystem: disk.fs, readOnly: c.readOnly ?? false });
  } catch (err) {
    r.open = typed(err, 'open', r.defects);
    return r;
  }
  try {
    const problems: unknown = db.check();
    if (!Array.isArray(problems) || problems.some((p) => typeof p !== 'string')) {
      r.defects.push(`check() returned ${JSON.stringify(problems)?.slice(0, 200)}, not a string[]`);
    } else {
      r.problems = problems as string[];
    }
  } catch (err) {
    r.defects.push(`check() threw: ${describe(err)}`);
  }
  try {
    db.view((tx) => {
      readEverything(tx);
      if (c.wantContent) r.content = contentHash(canon(dumpTx(tx, false)));
    });
  } catch (err) {
    r.read = typed(err, 'read', r.defects);
  }
  if (!c.readOnly) {
    // Writing to a damaged file may fail, but only with a BoltError.
    try {
      db.update((tx) => {
        const first = tx.cursor().first();
        const b = first ? tx.bucket(first[0]) : tx.createBucket('new');
        if (!b) return;
        b.put('corrupt-test-key', new Uint8Array(100));
        const k = b.cursor().first();
        if (k && k[1] !== null) b.delete(k[0]);
      });
    } catch (err) {
      r.write = typed(err, 'write', r.defects);
    }
  }
  try {
    db.close();
  } catch (err) {
    typed(err, 'close', r.defects);
  }
  return r;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const file = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as CaseFile;
  const start = Number(process.argv[3] ?? 0);
  const bases = new Map(Object.entries(file.bases).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]));
  for (let i = start; i < file.cases.length; i++) {
    const c = file.cases[i]!;
    process.stdout.write(`S ${i}\n`);
    const r = runCase(i, c, bases.get(c.base)!);
    process.stdout.write(`R ${JSON.stringify(r)}\n`);
  }
}
