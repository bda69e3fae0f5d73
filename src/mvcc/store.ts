/**
 * The revision layer: etcd's MVCC store over a Backend.
 *
 * Every request runs synchronously against the in-memory key index plus an overlay of records not
 * yet durable, so it sees all earlier writes at once; its changes are queued for the backend and
 * its promise resolves when they are durable (commit-queue.ts: writes issued in the same event-loop
 * turn share one backend transaction, each with its own revision). Committed revisions are handed
 * to onCommit listeners (the watch layer) in order, only after they are durable.
 *
 * The concepts live where etcd keeps them: the read/write transaction (txn-context.ts), range
 * (range.ts), compares and txns (compare.ts, txn.ts), leases (lessor.ts), compaction
 * (compaction.ts), history reads for watch (history.ts), request parsing (validate.ts).
 */
import type { Backend, BackendReader } from './backend.ts';
import {
  CONSISTENT_INDEX_KEY,
  FINISHED_COMPACT_KEY,
  KEY_BUCKET,
  LEASE_BUCKET,
  META_BUCKET,
  SCHEDULED_COMPACT_KEY,
} from './buckets.ts';
import { decodeIndexFieldsAt } from './codec.ts';
import { CommitQueue } from './commit-queue.ts';
import { Compactor } from './compaction.ts';
import { MvccError, corruption, etcdError } from './errors.ts';
import { hashKV, type HashKVResult } from './hash.ts';
import { readHistory } from './history.ts';
import { KeyIndex } from './key-index.ts';
import { Lessor, MAX_LEASE_TTL } from './lessor.ts';
import { parseStoreOptions, type MvccStoreOptions, type ResolvedStoreOptions } from './options.ts';
import { rangeOp } from './range.ts';
import { deleteSize, putSize, raftRequestSize, txnSize } from './request-size.ts';
import type {
  ApplyRequest,
  ApplyResponse,
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from './requests.ts';
import { isRevKeyAt, MARKED_REV_BYTES, parseRevKey, parseU64, revMainAt, revSubAt, revToBytes } from './revision.ts';
import { header, WriteTxn, type StoreState } from './txn-context.ts';
import { runTxn } from './txn.ts';
import type { EventSource, RevisionBatch } from './types.ts';
import {
  normalizeDelete,
  normalizePut,
  normalizeRange,
  normalizeTxn,
  noUnknownFields,
  parseCompaction,
  parseGrant,
  parseLeaseId,
  parseTimeToLive,
  type NDelete,
  type NOp,
  type NPut,
  type NTxn,
} from './validate.ts';
import { bytesToByteString as bstr, byteStringToBytes } from '../keys.ts';
import { Panic } from '../errors.ts';

export type { MvccStoreOptions } from './options.ts';
export {
  CONSISTENT_INDEX_KEY,
  FINISHED_COMPACT_KEY,
  KEY_BUCKET,
  LEASE_BUCKET,
  MAX_LEASE_TTL,
  META_BUCKET,
  SCHEDULED_COMPACT_KEY,
};

/** A compaction revision from `meta` (-1 when absent); ERR_CORRUPT for anything boltkv cannot have written. */
function metaRevision(r: BackendReader, key: Uint8Array, name: string): number {
  const v = r.get(META_BUCKET, key);
  if (v === undefined) return -1;
  const rev = parseRevKey(v);
  if (rev === undefined || rev.tombstone) throw corruption(META_BUCKET, name, 'not a revision below 2^53');
  return rev.main;
}

/** The reader of a write that reads nothing: any read is a bug in the caller's claim. */
const NO_READS: BackendReader = {
  get: () => {
    throw new Panic('a write said it reads nothing, then read');
  },
  scan: () => {
    throw new Panic('a write said it reads nothing, then scanned');
  },
  scanReverse: () => {
    throw new Panic('a write said it reads nothing, then scanned');
  },
};

const APPLY_KINDS = ['put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke'] as const;

/** etcd's isTxnReadonly: every op of both branches, nested txns included, is a range. */
function readOnlyTxn(n: NTxn): boolean {
  const ok = (op: NOp): boolean => op.t === 'range' || (op.t === 'txn' && readOnlyTxn(op.r));
  return n.success.every(ok) && n.failure.every(ok);
}

export class MvccStore implements EventSource {
  readonly #backend: Backend;
  readonly #opts: ResolvedStoreOptions;
  readonly #s: StoreState;
  readonly #queue: CommitQueue;
  readonly #lessor: Lessor;
  readonly #compactor: Compactor;
  /** Newest revision durable and announced to listeners. */
  #durableRev = 1;
  #consistentIdx = 0;
  readonly #listeners = new Set<(b: RevisionBatch) => void>();
  #leaseTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(opts: MvccStoreOptions) {
    this.#opts = parseStoreOptions(opts);
    this.#backend = opts.backend;
    this.#lessor = new Lessor(this.#opts.now, this.#opts.minLeaseTTL);
    this.#queue = new CommitQueue(this.#backend, (b) => this.#announce(b));
    const index = new KeyIndex();
    this.#s = { index, lessor: this.#lessor, queue: this.#queue, currentRev: 1, compactMainRev: -1 };
    this.#compactor = new Compactor(
      this.#backend,
      index,
      this.#opts.compactionBatchLimit,
      this.#opts.compactionBatchIntervalMs,
      (e) => this.#queue.fail(e),
    );
    this.#queue.background = this.#compactor;
  }

  /** Open a store over `backend`, rebuilding the key index and leases and resuming any compaction. */
  static open(opts: MvccStoreOptions): MvccStore {
    const s = new MvccStore(opts);
    s.#restore();
    if (s.#opts.leaseCheckIntervalMs > 0 && s.#opts.autoExpireLeases) {
      s.#leaseTimer = setInterval(() => {
        try {
          s.expireLeases();
        } catch (e) {
          process.emitWarning(`boltkv: lease expiry check failed: ${String(e)}`);
        }
      }, s.#opts.leaseCheckIntervalMs);
      s.#leaseTimer.unref();
    }
    if (s.#compactor.pending) s.#queue.schedule();
    return s;
  }

  #restore(): void {
    const s = this.#s;
    this.#backend.view((r) => {
      const ci = r.get(META_BUCKET, CONSISTENT_INDEX_KEY);
      if (ci !== undefined) {
        const n = parseU64(ci);
        if (n === undefined) throw corruption(META_BUCKET, 'consistent_index', 'not an 8-byte integer below 2^53');
        this.#consistentIdx = n;
      }
      const fin = metaRevision(r, FINISHED_COMPACT_KEY, 'finishedCompactRev');
      // -1: nothing scheduled (etcd uses 0, which would forget a compact(0) cut short by a crash)
      const scheduled = metaRevision(r, SCHEDULED_COMPACT_KEY, 'scheduledCompactRev');
      if (fin > scheduled)
        throw corruption(
          META_BUCKET,
          'finishedCompactRev',
          `finished compaction ${fin} was never scheduled (scheduled: ${scheduled})`,
        );
      s.compactMainRev = fin;
      let maxRev = 0;
      const latestLease = new Map<string, bigint>();
      // One pass in revision order, nothing allocated per record but the key string (2M records
      // on a million-key reopen: per-record objects made garbage collection the main cost). Keys
      // and values are read in place where the backend can hand them over so (scanAll).
      const visit = (kb: Uint8Array, ko: number, kl: number, vb: Uint8Array, vo: number, vl: number): void => {
        if (!isRevKeyAt(kb, ko, kl)) throw corruption(KEY_BUCKET, kb.slice(ko, ko + kl), 'not a revision key');
        const main = revMainAt(kb, ko);
        const sub = revSubAt(kb, ko);
        const tomb = kl === MARKED_REV_BYTES;
        const f = decodeIndexFieldsAt(vb, vo, vo + vl, kb, ko, kl);
        if (f.tombstone !== tomb)
          throw corruption(
            KEY_BUCKET,
            kb.slice(ko, ko + kl),
            tomb ? 'a tombstone key holds a value' : 'a value key holds a tombstone',
          );
        maxRev = main;
        if (f.tombstone) {
          s.index.restoreTombstone(f.key, main, sub);
          if (latestLease.size > 0) latestLease.delete(f.key);
          return;
        }
        if (f.modRevision !== main)
          throw corruption(KEY_BUCKET, kb.slice(ko, ko + kl), `record says modRevision ${f.modRevision}`);
        s.index.put(f.key, main, sub, f.createRevision, f.version);
        if (f.lease !== 0n) latestLease.set(f.key, f.lease);
        else if (latestLease.size > 0) latestLease.delete(f.key);
      };
      if (r.scanAll !== undefined) r.scanAll(KEY_BUCKET, visit);
      else r.scan(KEY_BUCKET, new Uint8Array(0), undefined, (k, v) => visit(k, 0, k.length, v, 0, v.length));
      // compaction may have removed every record of the newest revisions, never the revision itself
      s.currentRev = Math.max(1, maxRev, s.compactMainRev, scheduled);
      this.#durableRev = s.currentRev;
      this.#lessor.restore(r, latestLease);
      if (scheduled > s.compactMainRev) {
        s.compactMainRev = scheduled;
        this.#compactor.resume(scheduled);
      }
    });
  }

  // ---------------------------------------------------------------- EventSource

  currentRevision(): number {
    return this.#durableRev;
  }

  compactRevision(): number {
    return Math.max(0, this.#s.compactMainRev);
  }

  onCommit(listener: (batch: RevisionBatch) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  readEvents(req: {
    fromRev: number;
    toRev: number;
    key: Uint8Array;
    rangeEnd?: Uint8Array;
    prevKv: boolean;
    limit?: number;
  }): RevisionBatch[] {
    this.#checkUsable();
    if (req.fromRev < this.#s.compactMainRev) throw etcdError('ERR_COMPACTED');
    const toRev = Math.min(req.toRev, this.#durableRev);
    return this.#backend.view((r) => readHistory(this.#s, r, { ...req, toRev }));
  }

  #announce(b: RevisionBatch): void {
    this.#durableRev = b.revision;
    if (this.#listeners.size === 0) return;
    // A write's batch is its WriteTxn, which keeps only encoded records while the commit is in
    // flight; listeners get a plain batch, its events decoded now that it is durable (an object
    // with an accessor of its own would cost V8 a hidden class per batch).
    const batch = b instanceof WriteTxn ? { revision: b.revision, events: b.events } : b;
    for (const l of [...this.#listeners]) {
      try {
        l(batch);
      } catch (err) {
        process.emitWarning(`boltkv: an onCommit listener threw: ${String(err)}`);
      }
    }
  }

  // ---------------------------------------------------------------- public requests

  /** The stored consistent index (last applied replication index). */
  consistentIndex(): number {
    return this.#consistentIdx;
  }

  /** What etcd's Status reports that exists in process: revision and backend size. */
  status(): { header: ResponseHeader; dbSize: number; dbSizeInUse: number } {
    this.#checkUsable();
    const size = this.#backend.size?.() ?? { dbSize: 0, dbSizeInUse: 0 };
    return { header: header(this.#s.currentRev), ...size };
  }

  /** The newest revision, including writes whose commit is still in flight. */
  revision(): number {
    return this.#s.currentRev;
  }

  range(req: RangeRequest): RangeResponse {
    this.#checkUsable();
    const n = normalizeRange(req);
    return this.#backend.view((r) => rangeOp(this.#s, r, n, this.#s.currentRev));
  }

  put(req: PutRequest): Promise<PutResponse> {
    return this.#write(
      () => this.#sized(normalizePut(req), 4, putSize),
      (n) => this.#putSync(n),
    );
  }

  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#write(
      () => this.#sized(normalizeDelete(req), 5, deleteSize),
      (n) => this.#deleteSync(n),
    );
  }

  txn(req: TxnRequest): Promise<TxnResponse> {
    return this.#write(
      () => this.#sized(normalizeTxn(req), 6, txnSize),
      (n) => this.#txnSync(n),
    );
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const { physical } = await this.#write(
      () => parseCompaction(req),
      (c) => {
        this.#compactSync(c.rev);
        return c;
      },
      false,
    );
    if (physical) await this.#compactor.whenDone();
    return { header: header(this.#s.currentRev) };
  }

  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.#write(
      () => parseGrant(req),
      (g) => this.#grantSync(g.ttl, g.id),
    );
  }

  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.#write(
      () => parseLeaseId(req),
      (id) => this.#revokeSync(id),
    );
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    const { id, keys } = parseTimeToLive(req);
    this.#checkUsable();
    this.expireLeases();
    const l = this.#lessor.get(id);
    if (l === undefined) return { header: header(this.#s.currentRev), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
    return {
      header: header(this.#s.currentRev),
      ID: id,
      TTL: this.#lessor.remaining(l),
      grantedTTL: l.TTL,
      keys: keys ? [...l.keys].sort().map((ks) => Buffer.from(byteStringToBytes(ks))) : [],
    };
  }

  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    const id = parseLeaseId(req);
    this.#checkUsable();
    this.expireLeases();
    const l = this.#lessor.renew(id);
    // etcd answers a keepalive of a missing (or just expired) lease with TTL 0, not an error
    return { header: header(this.#s.currentRev), ID: id, TTL: l === undefined ? 0 : l.TTL };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.#checkUsable();
    this.expireLeases();
    return { header: header(this.#s.currentRev), leases: this.#lessor.list().map((ID) => ({ ID })) };
  }

  /**
   * Apply a replicated request at log index `index`. An index at or below the stored consistent
   * index was applied before (we are replaying after a crash) and is skipped: resolves undefined.
   * Otherwise the index is stored in the same backend transaction as the request's effects — also
   * when the request fails, so a failing entry is not retried forever; the error is then thrown.
   */
  async apply(index: number, req: ApplyRequest): Promise<ApplyResponse | undefined> {
    const r = this.applyNow(index, req);
    if (r === undefined) return undefined;
    await this.#queue.durable();
    if ('error' in r) throw r.error;
    if ('compaction' in r.response && r.physical) await this.#compactor.whenDone();
    return r.response;
  }

  /**
   * apply() without waiting: the request runs against memory at once (later reads see it) and its
   * effects and `index` are queued for the next commit, which this does not schedule: a replicated
   * member whose log already holds the entry lets it ride its next commit (commit()). Undefined for
   * an index already applied; a failing request consumes its index and is returned as `error`.
   */
  applyNow(
    index: number,
    req: ApplyRequest,
  ): { response: ApplyResponse; physical: boolean } | { error: unknown } | undefined {
    if (!Number.isSafeInteger(index) || index < 1) {
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: apply index must be a positive integer');
    }
    this.#checkUsable();
    if (index <= this.#consistentIdx) return undefined;
    const r = req as Record<string, unknown>;
    // validate first: a request we cannot even parse is a caller bug, not a log entry
    if (r === null || typeof r !== 'object')
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: apply request must be an object');
    noUnknownFields(r, APPLY_KINDS, 'apply request');
    const kinds = APPLY_KINDS.filter((k) => r[k] !== undefined);
    if (kinds.length !== 1)
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: apply request must set exactly one operation');
    this.#consistentIdx = index;
    this.#queue.setConsistentIndex(index);
    try {
      if ('put' in req) return { response: { put: this.#putSync(normalizePut(req.put)) }, physical: false };
      if ('deleteRange' in req)
        return { response: { deleteRange: this.#deleteSync(normalizeDelete(req.deleteRange)) }, physical: false };
      if ('txn' in req) return { response: { txn: this.#txnSync(normalizeTxn(req.txn)) }, physical: false };
      if ('compaction' in req) {
        const c = parseCompaction(req.compaction);
        this.#compactSync(c.rev);
        return { response: { compaction: { header: header(this.#s.currentRev) } }, physical: c.physical };
      }
      if ('leaseGrant' in req) {
        const g = parseGrant(req.leaseGrant);
        return { response: { leaseGrant: this.#grantSync(g.ttl, g.id) }, physical: false };
      }
      return { response: { leaseRevoke: this.#revokeSync(parseLeaseId(req.leaseRevoke)) }, physical: false };
    } catch (error) {
      return { error };
    }
  }

  /** Commits everything queued (applyNow's effects included); resolves once it is durable. */
  commit(): Promise<void> {
    this.#checkUsable();
    return this.#queue.durable();
  }

  /**
   * A txn whose every op is a range (etcd's isTxnReadonly), answered from memory at once with
   * nothing to commit; a replicated member serves it after its read barrier instead of logging it.
   */
  readTxn(req: TxnRequest): TxnResponse {
    this.#checkUsable();
    const n = normalizeTxn(req);
    if (!readOnlyTxn(n)) throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: readTxn given a txn that writes');
    return this.#txnSync(n);
  }

  /**
   * Resolves once every scheduled compaction has physically finished (including one resumed after a
   * restart). Rejects if the store fails or closes first.
   */
  compactionDone(): Promise<void> {
    this.#checkUsable();
    const done = this.#compactor.whenDone();
    this.#queue.schedule();
    return done;
  }

  /** etcd's HashKV at rev (0: current) over durable data; see hash.ts. */
  async hashKV(rev: number): Promise<HashKVResult> {
    this.#checkUsable();
    while (this.#durableRev < this.#s.currentRev) await this.#queue.durable();
    return this.#backend.view((r) => hashKV(r, rev, this.#s.currentRev, this.#s.compactMainRev));
  }

  /** Revoke every lease whose TTL ran out (each in its own revision). Runs on the lease timer. */
  expireLeases(): void {
    if (!this.#opts.autoExpireLeases || this.#closed || this.#queue.failure !== undefined) return;
    const expired = this.#lessor.expired(); // every write calls this: O(1) in the common case
    for (const l of expired) this.#revokeSync(l.ID);
    if (expired.length > 0) void this.#queue.durable().catch(() => undefined);
  }

  /** Finish queued commits (not compaction), stop timers, close the backend if we own it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#leaseTimer !== undefined) clearInterval(this.#leaseTimer);
    await this.#queue.close();
    this.#compactor.close(
      new MvccError('ERR_CLOSED', 'boltkv: store closed before compaction finished; it resumes on reopen'),
    );
    if (this.#opts.closeBackend) await this.#backend.close();
  }

  // ---------------------------------------------------------------- request execution

  /**
   * The one path of every client write: parse and check the request, refuse if the store is closed
   * or failed, revoke expired leases first (as etcd's lessor would have), run the write against
   * memory, then wait until the group commit carrying it is durable.
   */
  #write<P, T>(parse: () => P, run: (p: P) => T, expire = true): Promise<T> {
    // Not an async function: its frame, and the closures of each await, would live across the
    // commit's fdatasyncs for each of a thousand writes in flight (see commit-queue.ts).
    let resp: T;
    try {
      const p = parse();
      this.#checkUsable();
      if (expire) this.expireLeases();
      resp = run(p);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.durable().then(() => resp);
  }

  /** etcd's --max-request-bytes check, on the raft request the write would be proposed as. */
  #sized<N>(n: N, field: number, size: (n: N) => number): N {
    if (raftRequestSize(field, size(n)) > this.#opts.maxRequestBytes) throw etcdError('ERR_REQUEST_TOO_LARGE');
    return n;
  }

  #checkUsable(): void {
    if (this.#queue.failure !== undefined) throw this.#queue.failure;
    if (this.#closed) throw new MvccError('ERR_CLOSED', 'boltkv: store is closed');
  }

  /**
   * Run a write transaction body; bump the revision if it changed anything. `reads` false: the body
   * reads nothing from the backend, so no read transaction is opened for it.
   */
  #inWriteTxn<T>(fn: (w: WriteTxn) => T, reads = true): T {
    const run = (reader: BackendReader): T => {
      const w = new WriteTxn(this.#s, reader);
      const result = fn(w);
      w.end();
      return result;
    };
    return reads ? this.#backend.view(run) : run(NO_READS);
  }

  #putSync(n: NPut): PutResponse {
    if (n.lease !== 0n && !this.#lessor.has(n.lease)) throw etcdError('ERR_LEASE_NOT_FOUND');
    // A put of a key with no live value reads nothing (it has no previous value to read), which
    // is every put of a load: it needs no backend read transaction.
    const reads = this.#s.index.current(bstr(n.key)) !== undefined;
    return this.#inWriteTxn((w) => w.put(n), reads);
  }

  #deleteSync(n: NDelete): DeleteRangeResponse {
    return this.#inWriteTxn((w) => w.deleteRange(n));
  }

  #txnSync(n: NTxn): TxnResponse {
    return this.#inWriteTxn((w) => runTxn(this.#s, w, n));
  }

  #compactSync(rev: number): void {
    const s = this.#s;
    if (rev <= s.compactMainRev) throw etcdError('ERR_COMPACTED');
    if (rev > s.currentRev) throw etcdError('ERR_FUTURE_REV');
    // Reads below rev fail from here on; the key index is trimmed in steps between writes (reads at
    // or above rev answer the same from a trimmed or an untrimmed index).
    s.compactMainRev = rev;
    this.#queue.put(META_BUCKET, SCHEDULED_COMPACT_KEY, revToBytes(rev, 0));
    this.#compactor.schedule(rev);
  }

  #grantSync(ttl: number, id: bigint): LeaseGrantResponse {
    const { lease, write } = this.#lessor.grant(ttl, id);
    this.#queue.put(LEASE_BUCKET, write.key, write.value!);
    return { header: header(this.#s.currentRev), ID: lease.ID, TTL: lease.TTL };
  }

  #revokeSync(id: bigint): LeaseRevokeResponse {
    const l = this.#lessor.get(id);
    if (l === undefined) throw etcdError('ERR_LEASE_NOT_FOUND');
    this.#inWriteTxn((w) => {
      for (const ks of [...l.keys].sort()) {
        if (this.#s.index.current(ks) !== undefined) w.deleteKey(ks);
      }
    });
    this.#queue.delete(LEASE_BUCKET, this.#lessor.remove(id).key);
    return { header: header(this.#s.currentRev) };
  }
}
