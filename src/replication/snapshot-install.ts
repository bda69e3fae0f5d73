/**
 * Installing the leader's bolt file on a lagging member: the bytes go to a temp file beside the
 * member's file and are synced; its raft buckets (the leader's log) are replaced by this member's
 * raft state at the snapshot point in one bolt transaction; then the temp file is renamed over the
 * member's file. A crash before the rename leaves the old file; after it, the complete new one.
 */
import { closeSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type FileSystem } from '../bolt/index.ts';
import type { HardState, SnapshotMetadata } from '../raft/index.ts';
import {
  DUMMY_KEY,
  HARDSTATE_KEY,
  RAFT_LOG_BUCKET,
  RAFT_STATE_BUCKET,
  RAFT_TERMS_BUCKET,
  SNAPSHOT_KEY,
  encodeHardState,
  encodeIndexTerm,
  encodeSnapshotMeta,
} from './raft-buckets.ts';
import { ReplicationError } from './errors.ts';

/** Atomically replaces `to` with `from` and makes the rename durable. */
export type Rename = (from: string, to: string) => void;

export const nodeRename: Rename = (from, to) => {
  renameSync(from, to);
  const fd = openSync(dirname(to), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

export interface InstallOptions {
  path: string;
  fs: FileSystem;
  rename: Rename;
  /** The leader's file: its bytes, or a synced file already received beside the member's file. */
  data: Uint8Array | { file: string };
  metadata: SnapshotMetadata;
  hardState: HardState;
}

const enc = new TextEncoder();

/** Writes a stream of chunks to `path` (replacing it) and syncs it; returns the byte count. */
export async function writeFileDurably(
  fs: FileSystem,
  path: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<number> {
  if (!fs.exists(path)) fs.create(path, new Uint8Array(0), 0o600);
  const f = fs.open(path, { readOnly: false, mode: 0o600 });
  let size = 0;
  try {
    f.truncate(0);
    for await (const c of chunks) {
      f.write(c, size);
      size += c.length;
    }
    await f.syncAsync();
  } finally {
    f.close();
  }
  return size;
}

export async function installSnapshot(o: InstallOptions): Promise<void> {
  let tmp: string;
  if (o.data instanceof Uint8Array) {
    tmp = `${o.path}.snap.tmp`;
    const size = await writeFileDurably(o.fs, tmp, [o.data]);
    if (size === 0) throw new ReplicationError('ERR_CORRUPT', 'snapshot message carried no database');
  } else {
    tmp = o.data.file;
  }
  const db = open(tmp, { fileSystem: o.fs });
  try {
    await db.updateAsync((tx) => {
      for (const name of [RAFT_LOG_BUCKET, RAFT_TERMS_BUCKET, RAFT_STATE_BUCKET])
        if (tx.bucket(enc.encode(name)) !== undefined) tx.deleteBucket(enc.encode(name));
      tx.createBucket(enc.encode(RAFT_LOG_BUCKET));
      const st = tx.createBucket(enc.encode(RAFT_STATE_BUCKET));
      st.put(HARDSTATE_KEY, encodeHardState(o.hardState));
      st.put(SNAPSHOT_KEY, encodeSnapshotMeta(o.metadata));
      st.put(DUMMY_KEY, encodeIndexTerm(o.metadata.index, o.metadata.term));
    });
  } finally {
    db.close();
  }
  o.rename(tmp, o.path);
}
