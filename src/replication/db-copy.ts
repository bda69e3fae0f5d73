/**
 * A consistent copy of a bolt file, taken from a read transaction: both meta pages rewritten from
 * the transaction's meta, then every page below its high-water mark read straight from the file.
 * The pages a reader sees are never reused while it is open, so writers may commit meanwhile. The
 * copy is produced in chunks so a multi-gigabyte file is never held in memory whole.
 */
import type { Tx } from '../bolt/index.ts';
import { encodeMeta } from '../bolt/meta.ts';

/** Default chunk: 1 MiB (a multiple of every supported page size). */
export const COPY_CHUNK_BYTES = 1 << 20;

export function* copyChunks(tx: Tx, chunkBytes = COPY_CHUNK_BYTES): Generator<Uint8Array, void, undefined> {
  const ps = tx.db.pageSize;
  const metas = new Uint8Array(2 * ps);
  // Both metas carry the transaction's state, so the copy opens at exactly this snapshot.
  encodeMeta(metas.subarray(0, ps), 0, tx.meta);
  encodeMeta(metas.subarray(ps), 1, tx.meta);
  yield metas;
  const end = tx.meta.pgid * ps;
  const step = Math.max(ps, Math.floor(chunkBytes / ps) * ps);
  for (let pos = 2 * ps; pos < end; pos += step) {
    tx.checkOpen();
    yield tx.db.pager.readRaw(pos, Math.min(step, end - pos));
  }
}

/** The whole copy in one buffer: for in-process transports and tests with small files. */
export function copyToBytes(tx: Tx): Uint8Array {
  const parts = [...copyChunks(tx)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
