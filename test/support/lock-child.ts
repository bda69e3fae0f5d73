/**
 * Child process for test/bolt/lock.test.ts: opens a database in another process, where flock
 * really is contended. Prints `start` just before open, then one JSON line with the outcome.
 * With `hold`, keeps the database open until stdin closes (or the process is killed).
 *
 * Usage: node --import tsx test/support/lock-child.ts <path> <rw|ro> <lockTimeoutMs> [hold]
 *
 * Race mode, for the two-process create race: for each round i, meet the peer at a barrier (marker
 * files in dir), then open dir/race-i.db (creating it if missing), put key `<id>` and close. Prints
 * one JSON line: { ok, errors: [...] }.
 *
 * Usage: node --import tsx test/support/lock-child.ts race <dir> <rounds> <id> <peerId>
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoltError, open } from '../../src/bolt/index.ts';

function codeOf(err: unknown): string {
  return err instanceof BoltError ? `${err.code}: ${err.message}` : `NOT_A_BOLT_ERROR: ${String(err)}`;
}

function race(dir: string, rounds: number, id: string, peer: string): void {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const errors: string[] = [];
  for (let i = 0; i < rounds; i++) {
    writeFileSync(join(dir, `barrier-${i}.${id}`), '');
    const deadline = Date.now() + 20_000;
    while (!existsSync(join(dir, `barrier-${i}.${peer}`))) {
      if (Date.now() > deadline) {
        errors.push(`round ${i}: peer never arrived`);
        break;
      }
      Atomics.wait(nap, 0, 0, 0.2);
    }
    try {
      const db = open(join(dir, `race-${i}.db`), { lockTimeoutMs: 10_000 });
      try {
        db.update((tx) => tx.createBucketIfNotExists('race').put(id, `round ${i}`));
      } finally {
        db.close();
      }
    } catch (err) {
      errors.push(`round ${i}: ${codeOf(err)}`);
    }
  }
  process.stdout.write(`${JSON.stringify({ ok: errors.length === 0, errors })}\n`);
}

const args = process.argv.slice(2);
if (args[0] === 'race') {
  race(args[1]!, Number(args[2]), args[3]!, args[4]!);
} else {
  const [path, mode, timeout, hold] = args;
  process.stdout.write('start\n');
  try {
    const db = open(path!, { readOnly: mode === 'ro', lockTimeoutMs: Number(timeout) });
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
    if (hold === 'hold') {
      process.stdin.resume();
      process.stdin.on('end', () => {
        db.close();
        process.exit(0);
      });
    } else {
      db.close();
    }
  } catch (err) {
    const code = err instanceof BoltError ? err.code : `NOT_A_BOLT_ERROR: ${String(err)}`;
    process.stdout.write(`${JSON.stringify({ ok: false, code })}\n`);
  }
}
