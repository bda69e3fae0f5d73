/**
 * Child process for test/bolt/lock.test.ts: opens a database in another process, where flock
 * really is contended. Prints `start` just before open, then one JSON line with the outcome.
 * With `hold`, keeps the database open until stdin closes (or the process is killed).
 *
 * Usage: node --import tsx test/support/lock-child.ts <path> <rw|ro> <lockTimeoutMs> [hold]
 */
import { BoltError, open } from '../../src/bolt/index.ts';

const [path, mode, timeout, hold] = process.argv.slice(2);
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
