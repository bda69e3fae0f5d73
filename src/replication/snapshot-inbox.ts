/**
 * The leader's files a member has received and not installed yet. Every reception writes a file of
 * its own (`<db>.snap.<index>.<n>`): a leader can send the same snapshot twice (a stale rejection
 * sends its probe back below its first index), and the second copy must never truncate the one
 * being installed. Files raft refused, or that a newer install made useless, are deleted, so a
 * multi-gigabyte copy is not left behind; files a crash left are swept when the member starts.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FileSystem } from '../bolt/index.ts';
import { ReplicationError } from './errors.ts';
import { writeFileDurably } from './snapshot-install.ts';

export class SnapshotInbox {
  private seq = 0;
  /** The newest complete file per snapshot index. */
  private readonly files = new Map<number, string>();

  constructor(
    private readonly fs: FileSystem,
    private readonly path: string,
  ) {}

  /** Writes a received stream to a file of its own and syncs it; then it may be taken. */
  async receive(index: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const file = `${this.path}.snap.${index}.${++this.seq}`;
    let size: number;
    try {
      size = await writeFileDurably(this.fs, file, chunks);
    } catch (err) {
      this.remove(file);
      throw err;
    }
    if (size === 0) {
      this.remove(file);
      throw new ReplicationError('ERR_CORRUPT', 'snapshot stream carried no database');
    }
    const older = this.files.get(index);
    if (older !== undefined) this.remove(older);
    this.files.set(index, file);
  }

  /** The file of the snapshot raft handed over (the install renames it away); older ones are deleted. */
  take(index: number): string {
    const file = this.files.get(index);
    if (file === undefined)
      throw new ReplicationError('ERR_CORRUPT', `snapshot ${index} arrived without its database file`);
    this.files.delete(index);
    this.discardUpTo(index);
    return file;
  }

  /** Deletes files of snapshots at or below `index`: this member already reflects them. */
  discardUpTo(index: number): void {
    for (const [i, f] of this.files) {
      if (i > index) continue;
      this.files.delete(i);
      this.remove(f);
    }
  }

  /** Number of files waiting (tests). */
  get size(): number {
    return this.files.size;
  }

  private remove(file: string): void {
    try {
      this.fs.remove?.(file);
    } catch {
      // a leftover is swept at the next start
    }
  }
}

/**
 * Deletes received files an earlier run of the member left beside `dbPath` (it crashed between
 * receiving and installing). Call only while holding the member's file, before peers can send.
 */
export function sweepReceivedSnapshots(dbPath: string, remove: (file: string) => void): number {
  const dir = dirname(dbPath);
  const prefix = `${basename(dbPath)}.snap.`;
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    remove(join(dir, name));
    n++;
  }
  return n;
}
