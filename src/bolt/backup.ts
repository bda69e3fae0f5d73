/**
 * Hot backup: a byte-for-byte image of the database as one read transaction sees it, written while
 * writers go on. The pages a reader can reach are never reused while it is open, so copying the
 * file's pages below the reader's high-water mark gives a consistent tree; only the two meta pages
 * are rewritten, both pointing at the reader's snapshot. Memory stays bounded: one chunk in flight.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { dirname } from 'node:path';
import { BoltkvError } from '../errors.ts';
import { BoltError } from './errors.ts';
import { encodeMeta } from './meta.ts';
import { ioFailure } from './pager.ts';
import type { Tx } from './tx.ts';

/** Bytes copied per read; the stream's own buffering bounds the rest. */
const CHUNK_BYTES = 1 << 20;

export interface WriteToOptions {
  /** Stops the copy with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Called after every chunk with bytes written so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Where a copy goes: a Node stream, or any async sink of chunks. */
export type CopySink = NodeJS.WritableStream | ((chunk: Uint8Array) => void | Promise<void>);

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new BoltError('ERR_ABORTED', 'copy aborted');
}

/** Write one chunk, waiting for 'drain' when the stream's buffer is full; an error or close rejects. */
function writeChunk(sink: CopySink, chunk: Uint8Array): void | Promise<void> {
  if (typeof sink === 'function') return sink(chunk);
  const state = sink as NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean };
  if (state.destroyed || state.writableEnded) {
    return Promise.reject(new BoltError('ERR_IO', 'backup write: the output stream is closed'));
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      sink.removeListener('drain', onDrain);
      sink.removeListener('error', onError);
      sink.removeListener('close', onClose);
      if (err === undefined) resolve();
      else reject(ioFailure('backup write', err));
    };
    const onDrain = (): void => settle();
    const onError = (err: unknown): void => settle(err ?? new Error('stream error'));
    const onClose = (): void => settle(new Error('the output stream closed'));
    sink.on('error', onError);
    sink.on('close', onClose);
    const more = sink.write(chunk, (err?: Error | null) => {
      if (err) settle(err);
    });
    if (more) settle();
    else sink.on('drain', onDrain);
  });
}

/** The meta page images of the copy: both slots name tx's root; slot 1 one txid lower, as bbolt does. */
export function metaPagesFor(tx: Tx): Uint8Array {
  const ps = tx.db.pageSize;
  const out = new Uint8Array(2 * ps);
  encodeMeta(out.subarray(0, ps), 0, tx.meta);
  encodeMeta(out.subarray(ps), 1, { ...tx.meta, txid: Math.max(0, tx.meta.txid - 1) });
  return out;
}

/**
 * Stream the snapshot of read transaction `tx` into `sink`. Returns the bytes written (tx.size).
 * Fails with ERR_TX_CLOSED if the transaction (or database) is closed before the copy ends.
 */
export async function writeTxTo(tx: Tx, sink: CopySink, options: WriteToOptions = {}): Promise<number> {
  tx.checkOpen();
  // A writer's changes live in memory until commit: a copy of the file would not hold them.
  if (tx.writable) throw new BoltError('ERR_INVALID_OPTION', 'writeTo needs a read-only transaction');
  const total = tx.size;
  const ps = tx.db.pageSize;
  await writeChunk(sink, metaPagesFor(tx));
  let done = 2 * ps;
  options.onProgress?.(done, total);
  while (done < total) {
    checkAbort(options.signal);
    tx.checkOpen();
    const len = Math.min(CHUNK_BYTES, total - done);
    const buf = new Uint8Array(len);
    let n: number;
    try {
      n = tx.pager.file.read(buf, done);
    } catch (err) {
      throw ioFailure('backup read', err);
    }
    if (n < len) throw new BoltError('ERR_CORRUPT_PAGE', `short read at offset ${done}: file truncated`);
    await writeChunk(sink, buf);
    done += len;
    options.onProgress?.(done, total);
  }
  return total;
}

/**
 * Copy the snapshot of tx into a new file at path: written to a temporary name beside it, synced,
 * then renamed into place, so path holds either its old content or a whole copy.
 */
export async function backupTxToFile(
  tx: Tx,
  path: string,
  options: WriteToOptions & { mode?: number } = {},
): Promise<number> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', options.mode ?? 0o600);
  } catch (err) {
    throw ioFailure(`backup open ${tmp}`, err);
  }
  let pos = 0;
  let ok = false;
  try {
    const n = await writeTxTo(
      tx,
      (chunk) => {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off, pos + off);
        pos += chunk.length;
        // Let writers and readers run between chunks.
        return new Promise<void>((r) => setImmediate(r));
      },
      options,
    );
    fsyncSync(fd);
    ok = true;
    return n;
  } catch (err) {
    if (err instanceof BoltkvError) throw err;
    throw ioFailure('backup', err);
  } finally {
    closeSync(fd);
    if (ok) {
      renameSync(tmp, path);
      syncDir(dirname(path));
    } else {
      rmSync(tmp, { force: true });
    }
  }
}

/** fsync a directory so a rename in it is durable (best effort where the OS refuses). */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The image of `tx` followed by its SHA-256 (32 bytes) as one stream: what etcd's Snapshot RPC
 * sends and `etcdctl snapshot restore` checks. `size` is the image's byte count (without the
 * digest), known before the first byte. The stream owns `tx` and ends it; a reader that stops
 * reading (destroys the stream) ends the copy.
 */
export function etcdSnapshot(tx: Tx, options: { signal?: AbortSignal } = {}): Readable & { readonly size: number } {
  const hash = createHash('sha256');
  const out = new PassThrough({ highWaterMark: CHUNK_BYTES });
  const size = tx.size;
  writeTxTo(
    tx,
    async (chunk) => {
      hash.update(chunk);
      if (out.destroyed) throw new BoltError('ERR_ABORTED', 'snapshot stream closed by its reader');
      if (!out.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const done = (): void => {
            out.off('close', closed);
            resolve();
          };
          const closed = (): void => {
            out.off('drain', done);
            reject(new BoltError('ERR_ABORTED', 'snapshot stream closed by its reader'));
          };
          out.once('drain', done);
          out.once('close', closed);
        });
      }
    },
    options,
  ).then(
    () => {
      tx.abort();
      out.end(hash.digest());
    },
    (err: unknown) => {
      tx.abort();
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    },
  );
  return Object.assign(out, { size });
}
