import path from 'node:path';
import { open, type DB, type OpenOptions } from '../../src/bolt/index.ts';
import { inTempDir } from './temp-dir.ts';

/**
 * A test body run against a fresh engine file in its own temporary directory (noSync, as tests do
 * not need durability), closed and removed afterwards whatever the body did. Returns the function
 * `test()` takes.
 */
export function withDb(
  fn: (db: DB, file: string) => void | Promise<void>,
  opts: OpenOptions = {},
): () => Promise<void> {
  return () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'db');
      const db = open(file, { noSync: true, ...opts });
      try {
        await fn(db, file);
      } finally {
        db.close();
      }
    }, 'boltkv-db-');
}
