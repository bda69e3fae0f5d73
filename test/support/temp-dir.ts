import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Runs fn in a fresh directory under the OS temp dir and removes the directory, with whatever fn
 * left in it, however fn ends. `prefix` names the directory, so a leftover says which test made it.
 */
export async function inTempDir<T>(fn: (dir: string) => T | Promise<T>, prefix = 'boltkv-test-'): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
