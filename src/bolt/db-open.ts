// Opening a file (bbolt's Open): options, creation, locking, meta selection.
import { DB } from './db.ts';
import { BoltError } from './errors.ts';
import type { FileIO, FileSystem } from './file.ts';
import { encodeMeta, impossiblePageSize, type Meta, type MetaSlot, readMetaSlot } from './meta.ts';
import { nodeFileSystem } from './node-file.ts';
import { FREELIST_FLAG, LEAF_FLAG, PAGE_HEADER_SIZE, writePageHeader } from './page.ts';

const DEFAULT_PAGE_SIZE = 4096;

export interface OpenOptions {
  /** Open read-only with a shared lock; many processes may do so at once. */
  readOnly?: boolean;
  /** How long to wait for the file lock before failing with ERR_LOCK_TIMEOUT. 0: one attempt. */
  lockTimeoutMs?: number;
  /** Page size for a new file (power of two, 1024..65536). Existing files keep theirs. */
  pageSize?: number;
  /** Skip fdatasync: fast, and a crash may lose or corrupt recent commits. For tests and bulk loads. */
  noSync?: boolean;
  /** Accepted for bbolt parity; boltkv never syncs separately when the file grows. */
  noGrowSync?: boolean;
  /** Never write the freelist (bbolt's NoFreelistSync); every open rebuilds it by walking the trees. */
  noFreelistSync?: boolean;
  /**
   * When the freelist is written (unless noFreelistSync): 'close' (the default) writes it once, at a
   * clean close, so a commit costs the same however many pages are free; after a crash the next
   * open rebuilds it by walking the trees. 'commit' writes it with every commit, as Go bbolt does.
   */
  freelistWrite?: 'close' | 'commit';
  freelist?: 'hashmap' | 'array';
  /** Bytes of parsed pages kept in memory. */
  cacheSize?: number;
  /**
   * Keep copies of the leaf pages a commit writes in the page cache (default true), for the next
   * commits and reads that come back to them. A store whose writes only append (the revision
   * store's `key` bucket) rarely reads them again, and the copies are most of its memory churn.
   */
  cacheWrittenLeaves?: boolean;
  /**
   * Share of the file (0 to 0.9; default 0, off) that may stand free before a small commit stops
   * growing the file to keep its pages contiguous: while fewer pages are free, a commit of up to 16
   * pages that finds no free run of its size is written at the file's end, in one extent, instead of
   * in the pieces the free runs offer. This growth stops once the file reaches its pages in use ÷ (1 − share); random
   * one-put commits on a large tree stay in one run from about 0.65 on (docs/benchmarks.md,
   * "Commit path: allocation policy").
   */
  allocationSlack?: number;
  /** Grow a new or small file to at least this many bytes up front. */
  initialSize?: number;
  /** Mode for a newly created file. */
  fileMode?: number;
  /** Group commit (db.batch): most calls in one transaction, and how long to wait for more. */
  maxBatchSize?: number;
  maxBatchDelayMs?: number;
  /** The file layer; tests inject faults here. */
  fileSystem?: FileSystem;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Attempts at opening when the file at path keeps being removed or replaced under us. */
const MAX_OPEN_ATTEMPTS = 5;

/**
 * Open (creating if needed) the database at path. A new file is created whole, atomically, before
 * anyone locks it; a file is only read, and only re-initialised when no commit ever reached it,
 * once we hold its lock and have checked it is still the file at path.
 */
export function open(path: string, options: OpenOptions = {}): DB {
  if (typeof path !== 'string' || path.length === 0) {
    throw new BoltError('ERR_INVALID_ARGUMENT', `open: path must be a non-empty string, got ${describe(path)}`);
  }
  validateOptions(options);
  const fsys = options.fileSystem ?? nodeFileSystem;
  const readOnly = options.readOnly ?? false;
  const mode = options.fileMode ?? 0o600;
  for (let attempt = 1; ; attempt++) {
    if (!fsys.exists(path)) {
      if (readOnly) throw new BoltError('ERR_IO', `open ${path}: no such file`);
      fsys.create(path, initImage(options.pageSize ?? DEFAULT_PAGE_SIZE), mode);
    }
    let file: FileIO;
    try {
      file = fsys.open(path, { readOnly, mode });
    } catch (err) {
      // Removed between our check and our open: start over.
      if (attempt < MAX_OPEN_ATTEMPTS && !fsys.exists(path)) continue;
      throw err;
    }
    try {
      lock(file, path, !readOnly, options.lockTimeoutMs ?? 0);
      if (!fsys.isCurrent(path, file)) {
        // We locked a file that was removed or replaced while we waited: its lock guards nothing.
        if (attempt >= MAX_OPEN_ATTEMPTS)
          throw new BoltError('ERR_IO', `open ${path}: the file keeps being replaced while we lock it`);
        closeQuietly(file);
        continue;
      }
      return openLocked(path, file, options);
    } catch (err) {
      closeQuietly(file);
      throw err;
    }
  }
}

function closeQuietly(file: FileIO): void {
  try {
    file.close();
  } catch {
    // already failing; the first error is the one to report
  }
}

/** Read the metas of a file we hold the lock on; re-initialise a file no commit ever reached. */
function openLocked(path: string, file: FileIO, options: OpenOptions): DB {
  const readOnly = options.readOnly ?? false;
  const attempt = (): DB => {
    const meta = readMeta(file);
    const size = file.size();
    if (size < meta.pgid * meta.pageSize) {
      throw new BoltError(
        'ERR_INVALID_FILE',
        `invalid database ${path}: file is ${size} bytes, its pages need ${meta.pgid * meta.pageSize}`,
      );
    }
    const db = DB.create(path, file, meta, options);
    if (!readOnly) void db.freelist; // load now so a corrupt freelist fails the open, not a later write
    return db;
  };
  let db: DB;
  try {
    db = attempt();
  } catch (err) {
    const size = file.size();
    const ps = readOnly ? null : neverCompleted(file, size, options.pageSize ?? DEFAULT_PAGE_SIZE);
    if (ps === null) {
      if (size === 0) throw new BoltError('ERR_INVALID_FILE', `invalid database ${path}: empty file`);
      throw err;
    }
    // Nothing was ever committed here (an interrupted creation): start it over, under our lock.
    file.write(initImage(ps), 0);
    if (size > 4 * ps) file.truncate(4 * ps);
    if (!(options.noSync ?? false)) file.sync();
    db = attempt();
  }
  if (!readOnly && options.initialSize) db.pager.grow(options.initialSize);
  return db;
}

const PAGE_SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536];
/** Files above this size cannot be a creation that never completed (its image is 4 pages). */
const MAX_INIT_BYTES = 1 << 20;

/**
 * The page size of a file no commit ever reached: every byte is either zero or the byte a new
 * file's image holds there, for some page size (pages past the image read as zeros). Such a file
 * holds nothing anyone wrote, so re-initialising it loses nothing. null for any other file.
 */
function neverCompleted(file: FileIO, size: number, preferred: number): number | null {
  if (size > MAX_INIT_BYTES) return null;
  const buf = new Uint8Array(size);
  if (file.read(buf, 0) < size) return null;
  for (const ps of [preferred, ...PAGE_SIZES.filter((p) => p !== preferred)]) {
    const img = initImage(ps);
    let ok = true;
    for (let i = 0; i < size && ok; i++) {
      const b = buf[i]!;
      ok = b === 0 || (i < img.length && b === img[i]);
    }
    if (ok) return ps;
  }
  return null;
}

const OPTION_NAMES = new Set<string>([
  'readOnly',
  'lockTimeoutMs',
  'pageSize',
  'noSync',
  'noGrowSync',
  'noFreelistSync',
  'freelist',
  'cacheSize',
  'initialSize',
  'fileMode',
  'maxBatchSize',
  'maxBatchDelayMs',
  'fileSystem',
  'freelistWrite',
  'cacheWrittenLeaves',
  'allocationSlack',
]);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  return Array.isArray(v) ? 'an array' : typeof v;
}

function badOption(name: string, want: string, got: unknown): BoltError {
  return new BoltError('ERR_INVALID_OPTION', `option ${name} must be ${want}, got ${describe(got)}`);
}

function validateOptions(o: OpenOptions): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new BoltError('ERR_INVALID_OPTION', `options must be an object, got ${describe(o)}`);
  }
  for (const name of Object.keys(o)) {
    if (!OPTION_NAMES.has(name)) throw new BoltError('ERR_INVALID_OPTION', `unknown option ${JSON.stringify(name)}`);
  }
  for (const k of ['readOnly', 'noSync', 'noGrowSync', 'noFreelistSync', 'cacheWrittenLeaves'] as const) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') throw badOption(k, 'a boolean', v);
  }
  if (o.pageSize !== undefined) {
    const ps = o.pageSize;
    if (typeof ps !== 'number' || !PAGE_SIZES.includes(ps))
      throw badOption('pageSize', 'a power of two between 1024 and 65536', ps);
  }
  if (o.freelistWrite !== undefined && o.freelistWrite !== 'close' && o.freelistWrite !== 'commit') {
    throw badOption('freelistWrite', "'close' or 'commit'", o.freelistWrite);
  }
  if (o.freelist !== undefined && o.freelist !== 'hashmap' && o.freelist !== 'array') {
    throw badOption('freelist', "'hashmap' or 'array'", o.freelist);
  }
  const slack = o.allocationSlack;
  if (slack !== undefined && (typeof slack !== 'number' || !(slack >= 0 && slack <= 0.9))) {
    throw badOption('allocationSlack', 'a number from 0 to 0.9', slack);
  }
  for (const k of ['lockTimeoutMs', 'cacheSize', 'maxBatchDelayMs'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0))
      throw badOption(k, 'a non-negative number', v);
  }
  for (const k of ['initialSize', 'maxBatchSize'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw badOption(k, 'a non-negative integer below 2^53', v);
    }
  }
  if (o.maxBatchSize === 0) throw badOption('maxBatchSize', 'at least 1', 0);
  if (
    o.fileMode !== undefined &&
    (typeof o.fileMode !== 'number' || !Number.isInteger(o.fileMode) || o.fileMode < 0 || o.fileMode > 0o7777)
  ) {
    throw badOption('fileMode', 'a file mode (an integer in 0..0o7777)', o.fileMode);
  }
  const fsys = o.fileSystem;
  if (fsys !== undefined) {
    const f = fsys as unknown as Record<string, unknown> | null;
    if (
      f === null ||
      typeof f !== 'object' ||
      !['open', 'exists', 'create', 'isCurrent'].every((m) => typeof f[m] === 'function')
    ) {
      throw badOption('fileSystem', 'a FileSystem (open, exists, create, isCurrent)', fsys);
    }
  }
}

function lock(file: FileIO, path: string, exclusive: boolean, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (file.tryLock(exclusive)) return;
    if (Date.now() >= deadline) {
      throw new BoltError(
        'ERR_LOCK_TIMEOUT',
        `cannot lock ${path}: another handle or process holds it${exclusive ? '' : ' for writing'} (waited ${timeoutMs} ms; raise lockTimeoutMs to wait longer)`,
      );
    }
    sleepSync(Math.min(10, Math.max(1, deadline - Date.now())));
  }
}

/** A new file's image: two metas, an empty freelist page, an empty root leaf. */
function initImage(pageSize: number): Uint8Array {
  const buf = new Uint8Array(pageSize * 4);
  for (let i = 0; i < 2; i++) {
    encodeMeta(buf.subarray(i * pageSize, (i + 1) * pageSize), i, {
      pageSize,
      flags: 0,
      root: 3,
      sequence: 0n,
      freelist: 2,
      pgid: 4,
      txid: i,
    });
  }
  writePageHeader(buf.subarray(2 * pageSize), 2, FREELIST_FLAG, 0, 0);
  writePageHeader(buf.subarray(3 * pageSize), 3, LEAF_FLAG, 0, 0);
  return buf;
}

/**
 * Pick the meta with the higher txid among the verified ones, as bbolt does: a torn meta write fails
 * its checksum and the older meta carries the file. A meta that passes its checksum but cannot be
 * true refuses the file (ERR_INVALID_FILE), whichever meta it is: it is damage, reported rather
 * than skipped (see decodeMeta).
 */
function readMeta(file: FileIO): Meta {
  const first = new Uint8Array(PAGE_HEADER_SIZE + 64);
  const n = file.read(first, 0);
  const slot0 = readMetaSlot(first.subarray(0, n), 0);
  const meta0 = 'meta' in slot0 ? slot0.meta : null;
  // Meta 1 lies one page in: at meta 0's page size if we trust it, else probe each possible size.
  const sizes = meta0 ? [meta0.pageSize] : PAGE_SIZES;
  let meta1: Meta | null = null;
  let err1: BoltError | null = null;
  for (const ps of sizes) {
    const buf = new Uint8Array(PAGE_HEADER_SIZE + 64);
    if (file.read(buf, ps) < buf.length) continue;
    const slot = meta0 ? readMetaSlot(buf, 1) : probe(buf);
    if (slot === null) continue;
    if ('unverified' in slot) {
      err1 ??= slot.unverified;
      continue;
    }
    if (slot.meta.pageSize !== ps) {
      if (meta0) throw impossiblePageSize(1, slot.meta.pageSize, ps);
      continue; // probing: bytes that merely look like a meta at the wrong offset
    }
    meta1 = slot.meta;
    break;
  }
  if (!meta0 && !meta1) {
    const err = 'unverified' in slot0 ? slot0.unverified : err1;
    throw err ?? new BoltError('ERR_INVALID_FILE', 'invalid database');
  }
  if (meta0 && meta1) return meta1.txid > meta0.txid ? meta1 : meta0;
  return (meta0 ?? meta1)!;
}

/** While probing for meta 1, a checksummed page at the wrong offset is not a meta we trust. */
function probe(buf: Uint8Array): MetaSlot | null {
  try {
    return readMetaSlot(buf, 1);
  } catch {
    return null;
  }
}
