/**
 * The revision layer: etcd's MVCC store over a Backend.
 *
 * Every request runs synchronously against the in-memory key index plus an overlay of records not
 * yet durable, so it sees all earlier writes at once; its changes are queued for the backend and
 * its promise resolves when they are durable. Writes issued in the same event-loop turn land in one
 * backend transaction (group commit), each with its own revision. Committed revisions are handed to
 * onCommit listeners (the watch layer) in order, only after they are durable.
 *
 * Compaction moves the compact revision at once (reads below it fail immediately) and deletes old
 * revisions in bounded batches between write commits, recording progress in `meta` so a restart
 * finishes the job.
 */
import type { Backend, BackendReader } from './backend.ts';
import { hashKV, type HashKVResult } from './hash.ts';
import { decodeIndexFields, decodeLease, decodeRecord, encodeKeyValue, encodeLease, encodeTombstone } from './codec.ts';
import { MvccError, etcdError } from './errors.ts';
import { KeyIndex, revKeyId, type KeepSet } from './key-index.ts';
import {
  bytesToRev, bytesToU64, leaseIdToBytes, mainRevPrefix, revToBytes, u64ToBytes,
} from './revision.ts';
import type {
  ApplyRequest, ApplyResponse, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
  LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesResponse,
  LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest, PutResponse,
  RangeRequest, RangeResponse, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
} from './requests.ts';
import type { Event, EventSource, KeyValue, RevisionBatch } from './types.ts';
import {
  normalizeDelete, normalizePut, normalizeRange, normalizeTxn, parseCompaction, parseGrant, parseLeaseId, parseTimeToLive, toBytes,
  type NCompare, type NDelete, type NOp, type NPut, type NRange, type NTxn,
} from './validate.ts';
import { Panic } from '../errors.ts';
import { randomBytes } from 'node:crypto';

export const KEY_BUCKET = 'key';
export const META_BUCKET = 'meta';
export const LEASE_BUCKET = 'lease';
const enc = new TextEncoder();
export const CONSISTENT_INDEX_KEY = enc.encode('consistent_index');
export const SCHEDULED_COMPACT_KEY = enc.encode('scheduledCompactRev');
export const FINISHED_COMPACT_KEY = enc.encode('finishedCompactRev');
/** etcd's MaxLeaseTTL (seconds). */
export const MAX_LEASE_TTL = 9_000_000_000;
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array([0]);

export interface MvccStoreOptions {
  backend: Backend;
  /** Close the backend when the store closes. Default true. */
  closeBackend?: boolean;
  /** Revisions examined per compaction batch (etcd's default is 1000). */
  compactionBatchLimit?: number;
  /** Pause between compaction deletion batches in ms, so writers interleave. Default 10 (etcd's). */
  compactionBatchIntervalMs?: number;
  /** Clock for lease expiry, in ms. Default Date.now. */
  now?: () => number;
  /** How often expired leases are looked for, in ms; 0 disables the timer. Default 500. */
  leaseCheckIntervalMs?: number;
  /**
   * Revoke expired leases locally (timer, and before each write). Turn off when a replication layer
   * decides expiry and applies leaseRevoke itself. Default true.
   */
  autoExpireLeases?: boolean;
  /** Shortest lease TTL in seconds; shorter grants are raised to it (etcd 3.4's default is 2). */
  minLeaseTTL?: number;
}

const bstr = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const strBytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

interface Lease {
  ID: bigint;
  TTL: number;
  /** ms on the store's clock */
  expiry: number;
  keys: Set<string>;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Everything queued for the next backend commit. */
interface PendingCommit {
  ops: { bucket: string; key: Uint8Array; value: Uint8Array | null }[];
  overlayKeys: string[];
  batches: RevisionBatch[];
  waiters: Waiter[];
  consistentIndex: number | undefined;
}

interface CompactionJob {
  rev: number;
  /** Revisions ≤ rev to keep; complete once the index phase is over. */
  keep: KeepSet;
  /** Index phase: the next key to compact in the key index; undefined once done. */
  indexFrom: string | undefined;
  /** Deletion phase: the next revision key to examine. */
  next: Uint8Array;
  waiters: Waiter[];
}

/** Keys of the key index compacted per step, so a million-key compaction never blocks for long. */
const INDEX_COMPACT_CHUNK = 10_000;

/** State of one write transaction while it runs. */
interface WriteCtx {
  reader: BackendReader;
  beginRev: number;
  events: Event[];
}

/** A txn with every compare already decided against the state before the txn. */
interface Decided {
  succeeded: boolean;
  ops: NOp[];
  nested: Map<number, Decided>;
}

function newPending(): PendingCommit {
  return { ops: [], overlayKeys: [], batches: [], waiters: [], consistentIndex: undefined };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class MvccStore implements EventSource {
  private readonly backend: Backend;
  private readonly opts: Required<Omit<MvccStoreOptions, 'backend'>>;
  private readonly index = new KeyIndex();
  /** Newest revision, including writes not yet durable. */
  private currentRev = 1;
  /** Newest revision durable and announced to listeners. */
  private durableRev = 1;
  /** -1 until the first compaction, as in etcd. */
  private compactMainRev = -1;
  private consistentIdx = 0;
  private readonly leases = new Map<bigint, Lease>();
  /** No lease expires before this (a lower bound; a keepalive may make it stale-low). */
  private nextExpiry = Infinity;
  private readonly keyLease = new Map<string, bigint>();
  /** Records written but not yet durable, by revision key: reads look here before the backend. */
  private readonly overlay = new Map<string, Uint8Array>();
  private pending = newPending();
  private flushScheduled = false;
  private committing = false;
  private readonly compactions: CompactionJob[] = [];
  private readonly listeners = new Set<(b: RevisionBatch) => void>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private closeWaiters: (() => void)[] = [];
  private compactTimer: NodeJS.Timeout | undefined;
  /** Date.now() before which the next compaction deletion batch does not start. */
  private compactResumeAt = 0;
  private failure: MvccError | undefined;

  private constructor(opts: MvccStoreOptions) {
    this.backend = opts.backend;
    this.opts = {
      closeBackend: opts.closeBackend ?? true,
      compactionBatchLimit: opts.compactionBatchLimit ?? 1000,
      compactionBatchIntervalMs: opts.compactionBatchIntervalMs ?? 10,
      now: opts.now ?? Date.now,
      leaseCheckIntervalMs: opts.leaseCheckIntervalMs ?? 500,
      autoExpireLeases: opts.autoExpireLeases ?? true,
      minLeaseTTL: opts.minLeaseTTL ?? 2,
    };
    if (!Number.isSafeInteger(this.opts.compactionBatchLimit) || this.opts.compactionBatchLimit < 1) {
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: compactionBatchLimit must be a positive integer');
    }
  }

  /** Open a store over `backend`, rebuilding the key index and leases and resuming any compaction. */
  static open(opts: MvccStoreOptions): MvccStore {
    const s = new MvccStore(opts);
    s.restore();
    if (s.opts.leaseCheckIntervalMs > 0 && s.opts.autoExpireLeases) {
      s.leaseTimer = setInterval(() => s.expireLeases(), s.opts.leaseCheckIntervalMs);
      s.leaseTimer.unref();
    }
    if (s.compactions.length > 0) s.scheduleFlush();
    return s;
  }

  // ---------------------------------------------------------------- restore

  private restore(): void {
    this.backend.view((r) => {
      const fin = r.get(META_BUCKET, FINISHED_COMPACT_KEY);
      const sch = r.get(META_BUCKET, SCHEDULED_COMPACT_KEY);
      const ci = r.get(META_BUCKET, CONSISTENT_INDEX_KEY);
      if (ci !== undefined) this.consistentIdx = bytesToU64(ci);
      this.compactMainRev = fin !== undefined ? bytesToRev(fin).main : -1;
      // -1: nothing scheduled (etcd uses 0, which would forget a compact(0) cut short by a crash)
      const scheduled = sch !== undefined ? bytesToRev(sch).main : -1;
      let maxRev = 0;
      const latestLease = new Map<string, bigint>();
      r.scan(KEY_BUCKET, revToBytes(0, 0), undefined, (k, v) => {
        const rev = bytesToRev(k);
        maxRev = rev.main;
        const f = decodeIndexFields(v);
        if (f.tombstone) {
          this.index.restoreTombstone(f.key, rev.main, rev.sub);
          latestLease.delete(f.key);
          return;
        }
        this.index.put(f.key, rev.main, rev.sub, f.createRevision, f.version);
        if (f.lease !== 0n) latestLease.set(f.key, f.lease);
        else latestLease.delete(f.key);
      });
      // compaction may have removed every record of the newest revisions, never the revision itself
      this.currentRev = Math.max(1, maxRev, this.compactMainRev, sch !== undefined ? bytesToRev(sch).main : 0);
      this.durableRev = this.currentRev;
      const now = this.opts.now();
      r.scan(LEASE_BUCKET, new Uint8Array(0), undefined, (_k, v) => {
        const l = decodeLease(v);
        // as etcd does on a new leader: every lease gets its full TTL again
        this.leases.set(l.ID, { ID: l.ID, TTL: l.TTL, expiry: now + l.TTL * 1000, keys: new Set() });
        this.nextExpiry = Math.min(this.nextExpiry, now + l.TTL * 1000);
      });
      for (const [ks, id] of latestLease) {
        const l = this.leases.get(id);
        if (l === undefined) continue;
        l.keys.add(ks);
        this.keyLease.set(ks, id);
      }
      if (scheduled > this.compactMainRev) {
        this.compactMainRev = scheduled;
        const keep = this.index.compact(scheduled);
        this.compactions.push({ rev: scheduled, keep, indexFrom: undefined, next: revToBytes(0, 0), waiters: [] });
      }
    });
  }

  // ---------------------------------------------------------------- EventSource

  currentRevision(): number {
    return this.durableRev;
  }

  compactRevision(): number {
    return Math.max(0, this.compactMainRev);
  }

  onCommit(listener: (batch: RevisionBatch) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
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
    this.checkUsable();
    if (req.fromRev < this.compactMainRev) throw etcdError('ERR_COMPACTED');
    const toRev = Math.min(req.toRev, this.durableRev);
    const from = Math.max(req.fromRev, 0);
    if (toRev < from) return [];
    const lo = bstr(req.key);
    const end = req.rangeEnd ?? EMPTY;
    const inRange = end.length === 0
      ? (k: string) => k === lo
      : end.length === 1 && end[0] === 0
        ? (k: string) => k >= lo
        : ((hi: string) => (k: string) => k >= lo && k < hi)(bstr(end));
    const limit = req.limit ?? Infinity;
    const out: RevisionBatch[] = [];
    this.backend.view((r) => {
      let cur: RevisionBatch | undefined;
      r.scan(KEY_BUCKET, revToBytes(from, 0), mainRevPrefix(toRev + 1), (k, v) => {
        const rev = bytesToRev(k);
        if (cur !== undefined && cur.revision !== rev.main) {
          out.push(cur);
          cur = undefined;
          if (out.length >= limit) return false;
        }
        const rec = decodeRecord(v);
        const key = rec.tombstone ? rec.key : rec.kv.key;
        const ks = bstr(key);
        if (!inRange(ks)) return true;
        const ev: Event = rec.tombstone
          ? { type: 'DELETE', kv: { key, createRevision: 0, modRevision: rev.main, version: 0, value: EMPTY, lease: 0n } }
          : { type: 'PUT', kv: rec.kv };
        if (req.prevKv && !(ev.type === 'PUT' && ev.kv.version === 1)) {
          const prevRev = rev.main - 1;
          if (prevRev >= this.compactMainRev && prevRev > 0) {
            const p = this.index.get(ks, prevRev);
            if (p !== undefined) ev.prevKv = this.readKv(r, p.main, p.sub);
          }
        }
        if (cur === undefined) cur = { revision: rev.main, events: [] };
        cur.events.push(ev);
        return true;
      });
      if (cur !== undefined && out.length < limit) out.push(cur);
    });
    return out;
  }

  // ---------------------------------------------------------------- public requests

  /** The stored consistent index (last applied replication index). */
  consistentIndex(): number {
    return this.consistentIdx;
  }

  /** What etcd's Status reports that exists in process: revision and backend size. */
  status(): { header: ResponseHeader; dbSize: number; dbSizeInUse: number } {
    this.checkUsable();
    const size = this.backend.size?.() ?? { dbSize: 0, dbSizeInUse: 0 };
    return { header: this.header(), ...size };
  }

  /** The newest revision, including writes whose commit is still in flight. */
  revision(): number {
    return this.currentRev;
  }

  range(req: RangeRequest): RangeResponse {
    this.checkUsable();
    const n = normalizeRange(req);
    return this.backend.view((r) => this.rangeOp(r, n, this.currentRev));
  }

  async put(req: PutRequest): Promise<PutResponse> {
    const n = normalizePut(req);
    this.checkUsable();
    this.expireLeases();
    const resp = this.putSync(n);
    await this.durable();
    return resp;
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const n = normalizeDelete(req);
    this.checkUsable();
    this.expireLeases();
    const resp = this.deleteSync(n);
    await this.durable();
    return resp;
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    const n = normalizeTxn(req);
    this.checkUsable();
    this.expireLeases();
    const resp = this.txnSync(n);
    await this.durable();
    return resp;
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const { rev, physical } = parseCompaction(req);
    this.checkUsable();
    const job = this.compactSync(rev);
    await this.durable();
    if (physical) await new Promise<void>((resolve, reject) => job.waiters.push({ resolve, reject }));
    return { header: this.header() };
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    const { ttl, id } = parseGrant(req);
    this.checkUsable();
    this.expireLeases();
    const resp = this.grantSync(ttl, id);
    await this.durable();
    return resp;
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    const id = parseLeaseId(req);
    this.checkUsable();
    this.expireLeases();
    const resp = this.revokeSync(id);
    await this.durable();
    return resp;
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    const { id, keys } = parseTimeToLive(req);
    this.checkUsable();
    this.expireLeases();
    const l = this.leases.get(id);
    if (l === undefined) return { header: this.header(), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
    const remaining = Math.trunc((l.expiry - this.opts.now()) / 1000);
    return {
      header: this.header(),
      ID: id,
      TTL: Math.max(remaining, 0),
      grantedTTL: l.TTL,
      keys: keys ? [...l.keys].sort().map(strBytes) : [],
    };
  }

  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    const id = parseLeaseId(req);
    this.checkUsable();
    this.expireLeases();
    const l = this.leases.get(id);
    if (l === undefined) throw etcdError('ERR_LEASE_NOT_FOUND');
    l.expiry = this.opts.now() + l.TTL * 1000;
    return { header: this.header(), ID: id, TTL: l.TTL };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.checkUsable();
    this.expireLeases();
    const ids = [...this.leases.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return { header: this.header(), leases: ids.map((ID) => ({ ID })) };
  }

  /**
   * Apply a replicated request at log index `index`. An index at or below the stored consistent
   * index was applied before (we are replaying after a crash) and is skipped: resolves undefined.
   * Otherwise the index is stored in the same backend transaction as the request's effects — also
   * when the request fails, so a failing entry is not retried forever; the error is then thrown.
   */
  async apply(index: number, req: ApplyRequest): Promise<ApplyResponse | undefined> {
    if (!Number.isSafeInteger(index) || index < 1) {
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: apply index must be a positive integer');
    }
    this.checkUsable();
    if (index <= this.consistentIdx) return undefined;
    const r = req as Record<string, unknown>;
    // validate first: a request we cannot even parse is a caller bug, not a log entry
    const kinds = ['put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke'].filter((k) => r[k] !== undefined);
    if (kinds.length !== 1) throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: apply request must set exactly one operation');
    this.consistentIdx = index;
    this.pending.consistentIndex = index;
    let resp: ApplyResponse;
    let job: CompactionJob | undefined;
    try {
      if ('put' in req) resp = { put: this.putSync(normalizePut(req.put)) };
      else if ('deleteRange' in req) resp = { deleteRange: this.deleteSync(normalizeDelete(req.deleteRange)) };
      else if ('txn' in req) resp = { txn: this.txnSync(normalizeTxn(req.txn)) };
      else if ('compaction' in req) {
        const c = parseCompaction(req.compaction);
        job = this.compactSync(c.rev);
        resp = { compaction: { header: this.header() } };
      } else if ('leaseGrant' in req) {
        const g = parseGrant(req.leaseGrant);
        resp = { leaseGrant: this.grantSync(g.ttl, g.id) };
      } else resp = { leaseRevoke: this.revokeSync(parseLeaseId(req.leaseRevoke)) };
    } catch (e) {
      await this.durable();
      throw e;
    }
    await this.durable();
    if (job !== undefined && 'compaction' in req && req.compaction.physical === true) {
      await new Promise<void>((resolve, reject) => job.waiters.push({ resolve, reject }));
    }
    return resp;
  }

  /**
   * Resolves once every scheduled compaction has physically finished (including one resumed after a
   * restart). Rejects if the store fails or closes first.
   */
  compactionDone(): Promise<void> {
    this.checkUsable();
    const last = this.compactions[this.compactions.length - 1];
    if (last === undefined) return Promise.resolve();
    this.scheduleFlush();
    return new Promise<void>((resolve, reject) => last.waiters.push({ resolve, reject }));
  }

  /** etcd's HashKV at rev (0: current) over durable data; see hash.ts. */
  async hashKV(rev: number): Promise<HashKVResult> {
    this.checkUsable();
    while (this.durableRev < this.currentRev) await this.durable();
    return this.backend.view((r) => hashKV(r, rev, this.currentRev, this.compactMainRev));
  }

  /** Revoke every lease whose TTL ran out (each in its own revision). Runs on the lease timer. */
  expireLeases(): void {
    if (!this.opts.autoExpireLeases || this.closed || this.failure !== undefined) return;
    const now = this.opts.now();
    if (now < this.nextExpiry) return; // every write calls this: keep it O(1) in the common case
    let any = false;
    let next = Infinity;
    for (const l of [...this.leases.values()]) {
      if (l.expiry <= now) {
        this.revokeSync(l.ID);
        any = true;
      } else next = Math.min(next, l.expiry);
    }
    this.nextExpiry = next;
    if (any) void this.durable().catch(() => undefined);
  }

  /** Finish queued commits (not compaction), stop timers, close the backend if we own it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    if (this.compactTimer !== undefined) clearTimeout(this.compactTimer);
    if (this.committing || this.flushScheduled || this.pending.waiters.length > 0 || this.pending.ops.length > 0) {
      await new Promise<void>((resolve) => {
        this.closeWaiters.push(resolve);
        this.scheduleFlush();
      });
    }
    for (const job of this.compactions) {
      for (const w of job.waiters) w.reject(new MvccError('ERR_CLOSED', 'boltkv: store closed before compaction finished; it resumes on reopen'));
    }
    this.compactions.length = 0;
    if (this.opts.closeBackend) await this.backend.close();
  }

  // ---------------------------------------------------------------- request execution

  private header(rev = this.currentRev): ResponseHeader {
    return { revision: rev };
  }

  private checkUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new MvccError('ERR_CLOSED', 'boltkv: store is closed');
  }

  /** Run a write transaction body; bump the revision if it changed anything. */
  private write<T>(fn: (w: WriteCtx) => T): T {
    return this.backend.view((reader) => {
      const w: WriteCtx = { reader, beginRev: this.currentRev, events: [] };
      const result = fn(w);
      if (w.events.length > 0) {
        this.currentRev = w.beginRev + 1;
        this.pending.batches.push({ revision: this.currentRev, events: w.events });
      }
      return result;
    });
  }

  private putSync(n: NPut): PutResponse {
    return this.write((w) => {
      if (n.lease !== 0n && !this.leases.has(n.lease)) throw etcdError('ERR_LEASE_NOT_FOUND');
      return this.putOp(w, n);
    });
  }

  private deleteSync(n: NDelete): DeleteRangeResponse {
    return this.write((w) => this.deleteOp(w, n));
  }

  private txnSync(n: NTxn): TxnResponse {
    return this.write((w) => {
      const d = this.decide(w.reader, n);
      // etcd checks every put on the chosen path, then every range, before changing anything
      this.checkPath(d, (op) => {
        if (op.t !== 'put') return;
        const p = op.r;
        if ((p.ignoreValue || p.ignoreLease) && this.index.current(bstr(p.key)) === undefined) throw etcdError('ERR_KEY_NOT_FOUND');
        if (p.lease !== 0n && !this.leases.has(p.lease)) throw etcdError('ERR_LEASE_NOT_FOUND');
      });
      this.checkPath(d, (op) => {
        if (op.t !== 'range' || op.r.revision === 0) return;
        if (op.r.revision > this.currentRev) throw etcdError('ERR_FUTURE_REV');
        if (op.r.revision < this.compactMainRev) throw etcdError('ERR_COMPACTED');
      });
      this.checkIgnoredKeysSurvive(d);
      const resp = this.applyDecided(w, d);
      resp.header = this.header(w.events.length > 0 ? w.beginRev + 1 : w.beginRev);
      return resp;
    });
  }

  private compactSync(rev: number): CompactionJob {
    if (rev <= this.compactMainRev) throw etcdError('ERR_COMPACTED');
    if (rev > this.currentRev) throw etcdError('ERR_FUTURE_REV');
    // Reads below rev fail from here on; the key index is trimmed in steps between writes (reads at
    // or above rev answer the same from a trimmed or an untrimmed index).
    this.compactMainRev = rev;
    this.pending.ops.push({ bucket: META_BUCKET, key: SCHEDULED_COMPACT_KEY, value: revToBytes(rev, 0) });
    const job: CompactionJob = { rev, keep: new Set(), indexFrom: '', next: revToBytes(0, 0), waiters: [] };
    this.compactions.push(job);
    return job;
  }

  private grantSync(ttlIn: number, idIn: bigint): LeaseGrantResponse {
    if (ttlIn > MAX_LEASE_TTL) throw etcdError('ERR_LEASE_TTL_TOO_LARGE');
    const ttl = Math.max(ttlIn, this.opts.minLeaseTTL);
    let id = idIn;
    if (id === 0n) {
      // positive int63 like etcd's generated IDs, which are mostly far above 2^53
      do id = randomBytes(8).readBigUInt64BE() >> 1n;
      while (id === 0n || this.leases.has(id));
    } else if (this.leases.has(id)) throw etcdError('ERR_LEASE_EXISTS');
    const expiry = this.opts.now() + ttl * 1000;
    this.leases.set(id, { ID: id, TTL: ttl, expiry, keys: new Set() });
    this.nextExpiry = Math.min(this.nextExpiry, expiry);
    this.pending.ops.push({ bucket: LEASE_BUCKET, key: leaseIdToBytes(id), value: encodeLease({ ID: id, TTL: ttl }) });
    return { header: this.header(), ID: id, TTL: ttl };
  }

  private revokeSync(id: bigint): LeaseRevokeResponse {
    const l = this.leases.get(id);
    if (l === undefined) throw etcdError('ERR_LEASE_NOT_FOUND');
    this.write((w) => {
      for (const ks of [...l.keys].sort()) {
        if (this.index.current(ks) !== undefined) this.deleteKey(w, ks);
      }
    });
    this.leases.delete(id);
    this.pending.ops.push({ bucket: LEASE_BUCKET, key: leaseIdToBytes(id), value: null });
    return { header: this.header() };
  }

  private decide(r: BackendReader, t: NTxn): Decided {
    const succeeded = t.compare.every((c) => this.applyCompare(r, c));
    const ops = succeeded ? t.success : t.failure;
    const nested = new Map<number, Decided>();
    ops.forEach((op, i) => {
      if (op.t === 'txn') nested.set(i, this.decide(r, op.r));
    });
    return { succeeded, ops, nested };
  }

  /**
   * A put with ignoreValue/ignoreLease needs its key live when it runs. The duplicate-key check
   * misses one way to break that inside a txn: a from-key ("\0") delete earlier in the txn (etcd
   * checks it as an empty interval, and then panics while applying). Replay the path's effect on key
   * liveness first so such a txn fails whole, with ERR_KEY_NOT_FOUND, before anything changes.
   */
  private checkIgnoredKeysSurvive(d: Decided): void {
    const overrides = new Map<string, boolean>();
    const live = (ks: string): boolean => overrides.get(ks) ?? this.index.current(ks) !== undefined;
    this.checkPath(d, (op) => {
      if (op.t === 'put') {
        const ks = bstr(op.r.key);
        if ((op.r.ignoreValue || op.r.ignoreLease) && !live(ks)) throw etcdError('ERR_KEY_NOT_FOUND');
        overrides.set(ks, true);
      } else if (op.t === 'delete') {
        const lo = bstr(op.r.key);
        if (op.r.rangeEnd.length === 0) {
          overrides.set(lo, false);
          return;
        }
        const hi = op.r.rangeEnd.length === 1 && op.r.rangeEnd[0] === 0 ? undefined : bstr(op.r.rangeEnd);
        const hit: string[] = [];
        this.index.range(lo, hi, Number.MAX_SAFE_INTEGER, (e) => {
          hit.push(e.key);
        });
        for (const ks of overrides.keys()) if (ks >= lo && (hi === undefined || ks < hi)) hit.push(ks);
        for (const ks of hit) overrides.set(ks, false);
      }
    });
  }

  private checkPath(d: Decided, f: (op: NOp) => void): void {
    d.ops.forEach((op, i) => {
      if (op.t === 'txn') this.checkPath(d.nested.get(i)!, f);
      else f(op);
    });
  }

  private applyDecided(w: WriteCtx, d: Decided): TxnResponse {
    const responses: ResponseOp[] = d.ops.map((op, i): ResponseOp => {
      switch (op.t) {
        case 'range':
          return { responseRange: this.rangeOp(w.reader, op.r, w.events.length > 0 ? w.beginRev + 1 : w.beginRev) };
        case 'put':
          return { responsePut: this.putOp(w, op.r) };
        case 'delete':
          return { responseDeleteRange: this.deleteOp(w, op.r) };
        case 'txn': {
          const inner = this.applyDecided(w, d.nested.get(i)!);
          // etcd leaves a nested txn's header empty
          return { responseTxn: inner };
        }
        case 'empty':
          throw new Panic('empty op survived validation');
      }
    });
    return { header: { revision: 0 }, succeeded: d.succeeded, responses };
  }

  private applyCompare(r: BackendReader, c: NCompare): boolean {
    const kvs = this.rangeKeys(r, c.key, c.rangeEnd, this.currentRev, 0, false).kvs;
    if (kvs.length === 0) {
      if (c.target === 'VALUE') return false; // a missing key has no value to compare
      return compareKV(c, undefined);
    }
    return kvs.every((kv) => compareKV(c, kv));
  }

  /** etcd's applier Range: fetch, filter, sort, truncate. `curRev` is the header revision. */
  private rangeOp(r: BackendReader, n: NRange, curRev: number): RangeResponse {
    let rev = n.revision;
    if (rev > curRev) throw etcdError('ERR_FUTURE_REV');
    if (rev <= 0) rev = curRev;
    if (rev < this.compactMainRev) throw etcdError('ERR_COMPACTED');
    const needAll = n.sortOrder !== 'NONE' || n.minModRevision !== 0 || n.maxModRevision !== 0 ||
      n.minCreateRevision !== 0 || n.maxCreateRevision !== 0;
    const fetch = needAll || n.limit <= 0 ? 0 : n.limit + 1;
    const res = this.rangeKeys(r, n.key, n.rangeEnd, rev, fetch, n.countOnly);
    let kvs = res.kvs;
    if (n.maxModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision <= n.maxModRevision);
    if (n.minModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision >= n.minModRevision);
    if (n.maxCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision <= n.maxCreateRevision);
    if (n.minCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision >= n.minCreateRevision);
    let order = n.sortOrder;
    if (n.sortTarget !== 'KEY' && order === 'NONE') order = 'ASCEND';
    if (order !== 'NONE') {
      const cmp = (a: KeyValue, b: KeyValue): number => {
        switch (n.sortTarget) {
          case 'KEY': return compareBytes(a.key, b.key);
          case 'VERSION': return cmpNum(a.version, b.version);
          case 'CREATE': return cmpNum(a.createRevision, b.createRevision);
          case 'MOD': return cmpNum(a.modRevision, b.modRevision);
          case 'VALUE': return compareBytes(a.value, b.value);
        }
      };
      kvs.sort(order === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
    }
    let more = false;
    if (n.limit > 0 && kvs.length > n.limit) {
      kvs = kvs.slice(0, n.limit);
      more = true;
    }
    if (n.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
    return { header: this.header(curRev), kvs, more, count: res.count };
  }

  /** Live keys of [key, end) at `rev` (etcd's rangeEnd rules); up to `limit` values fetched (0: all). */
  private rangeKeys(r: BackendReader, key: Uint8Array, end: Uint8Array, rev: number, limit: number, countOnly: boolean): { kvs: KeyValue[]; count: number } {
    const kvs: KeyValue[] = [];
    let count = 0;
    if (end.length === 0) {
      const hit = this.index.get(bstr(key), rev);
      if (hit !== undefined) {
        count = 1;
        if (!countOnly) kvs.push(this.readKv(r, hit.main, hit.sub));
      }
      return { kvs, count };
    }
    const to = end.length === 1 && end[0] === 0 ? undefined : bstr(end);
    this.index.range(bstr(key), to, rev, (e) => {
      count++;
      if (!countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(this.readKv(r, e.main, e.sub));
    });
    return { kvs, count };
  }

  private readKv(r: BackendReader, main: number, sub: number): KeyValue {
    const rk = revToBytes(main, sub);
    const raw = this.overlay.get(bstr(rk)) ?? r.get(KEY_BUCKET, rk);
    if (raw === undefined) throw new Panic(`index points at missing revision ${main}_${sub}`);
    const rec = decodeRecord(raw);
    if (rec.tombstone) throw new Panic('index points at a tombstone');
    return rec.kv;
  }

  /** The live value of a key right now (including this transaction's own writes). */
  private liveKv(r: BackendReader, ks: string): KeyValue | undefined {
    const hit = this.index.get(ks, Number.MAX_SAFE_INTEGER);
    return hit === undefined ? undefined : this.readKv(r, hit.main, hit.sub);
  }

  private putOp(w: WriteCtx, n: NPut): PutResponse {
    const ks = bstr(n.key);
    const prev = this.liveKv(w.reader, ks);
    if ((n.ignoreValue || n.ignoreLease) && prev === undefined) throw etcdError('ERR_KEY_NOT_FOUND');
    const value = n.ignoreValue ? prev!.value : n.value;
    const lease = n.ignoreLease ? prev!.lease : n.lease;
    const rev = w.beginRev + 1;
    const sub = w.events.length;
    const kv: KeyValue = {
      key: n.key.slice(),
      createRevision: prev !== undefined ? prev.createRevision : rev,
      modRevision: rev,
      version: prev !== undefined ? prev.version + 1 : 1,
      value: value.slice(),
      lease,
    };
    this.index.put(ks, rev, sub, kv.createRevision, kv.version);
    const rk = revToBytes(rev, sub);
    const record = encodeKeyValue(kv);
    const id = bstr(rk);
    this.overlay.set(id, record);
    this.pending.overlayKeys.push(id);
    this.pending.ops.push({ bucket: KEY_BUCKET, key: rk, value: record });
    const old = this.keyLease.get(ks);
    if (old !== undefined && old !== lease) this.leases.get(old)?.keys.delete(ks);
    if (lease !== 0n) {
      this.leases.get(lease)?.keys.add(ks);
      this.keyLease.set(ks, lease);
    } else this.keyLease.delete(ks);
    w.events.push(prev !== undefined ? { type: 'PUT', kv, prevKv: prev } : { type: 'PUT', kv });
    const resp: PutResponse = { header: this.header(rev) };
    if (n.prevKv && prev !== undefined) resp.prevKv = prev;
    return resp;
  }

  private deleteOp(w: WriteCtx, n: NDelete): DeleteRangeResponse {
    const live: string[] = [];
    if (n.rangeEnd.length === 0) {
      const ks = bstr(n.key);
      if (this.index.current(ks) !== undefined) live.push(ks);
    } else {
      const to = n.rangeEnd.length === 1 && n.rangeEnd[0] === 0 ? undefined : bstr(n.rangeEnd);
      this.index.range(bstr(n.key), to, Number.MAX_SAFE_INTEGER, (e) => {
        live.push(e.key);
      });
    }
    const prevKvs: KeyValue[] = [];
    for (const ks of live) {
      const prev = this.deleteKey(w, ks);
      if (n.prevKv) prevKvs.push(prev);
    }
    const rev = live.length > 0 || w.events.length > 0 ? w.beginRev + 1 : w.beginRev;
    return { header: this.header(rev), deleted: live.length, prevKvs };
  }

  /** Tombstone one live key; returns its last value. */
  private deleteKey(w: WriteCtx, ks: string): KeyValue {
    const prev = this.liveKv(w.reader, ks);
    if (prev === undefined) throw new Panic('deleting a key that is not live');
    const rev = w.beginRev + 1;
    const sub = w.events.length;
    this.index.tombstone(ks, rev, sub);
    const key = strBytes(ks);
    this.pending.ops.push({ bucket: KEY_BUCKET, key: revToBytes(rev, sub, true), value: encodeTombstone(key) });
    const old = this.keyLease.get(ks);
    if (old !== undefined) {
      this.leases.get(old)?.keys.delete(ks);
      this.keyLease.delete(ks);
    }
    // A watcher's prevKv is the key as of the revision before this one (as etcd and our history
    // read give it), not a value written earlier in the same txn.
    const before = this.index.get(ks, w.beginRev);
    const ev: Event = { type: 'DELETE', kv: { key, createRevision: 0, modRevision: rev, version: 0, value: EMPTY, lease: 0n } };
    if (before !== undefined) ev.prevKv = this.readKv(w.reader, before.main, before.sub);
    w.events.push(ev);
    return prev;
  }

  // ---------------------------------------------------------------- group commit and compaction

  /** A promise for the commit that will carry everything queued so far. */
  private durable(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const p = new Promise<void>((resolve, reject) => this.pending.waiters.push({ resolve, reject }));
    this.scheduleFlush();
    return p;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.committing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      for (;;) {
        if (this.failure !== undefined) break;
        const p = this.pending;
        if (p.ops.length > 0 || p.waiters.length > 0 || p.batches.length > 0 || p.consistentIndex !== undefined) {
          this.pending = newPending();
          await this.commit(p);
          continue;
        }
        if (this.closed || this.compactions.length === 0) break;
        // Between deletion batches compaction rests (etcd: 10 ms) with the loop released, so a
        // writer arriving meanwhile commits at once instead of queueing behind the next batch.
        const wait = this.compactResumeAt - Date.now();
        if (wait > 0) {
          if (this.compactTimer === undefined) {
            this.compactTimer = setTimeout(() => {
              this.compactTimer = undefined;
              this.scheduleFlush();
            }, wait);
          }
          break;
        }
        const job = this.compactions[0]!;
        const deleting = job.indexFrom === undefined;
        await this.compactStep(job);
        if (deleting) this.compactResumeAt = Date.now() + this.opts.compactionBatchIntervalMs;
        // always give other work a turn between steps
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.committing = false;
    }
    if (this.closed && this.pending.waiters.length === 0 && this.pending.ops.length === 0) {
      const ws = this.closeWaiters;
      this.closeWaiters = [];
      for (const f of ws) f();
    } else if (this.failure === undefined && (this.pending.waiters.length > 0 || this.pending.ops.length > 0)) {
      this.scheduleFlush();
    } else if (this.failure !== undefined) {
      const ws = this.closeWaiters;
      this.closeWaiters = [];
      for (const f of ws) f();
    }
  }

  private async commit(p: PendingCommit): Promise<void> {
    try {
      await this.backend.update((w) => {
        for (const op of p.ops) {
          if (op.value === null) w.delete(op.bucket, op.key);
          else w.put(op.bucket, op.key, op.value);
        }
        if (p.consistentIndex !== undefined) w.put(META_BUCKET, CONSISTENT_INDEX_KEY, u64ToBytes(p.consistentIndex));
      });
    } catch (e) {
      this.fail(e, p);
      return;
    }
    for (const id of p.overlayKeys) this.overlay.delete(id);
    for (const b of p.batches) {
      this.durableRev = b.revision;
      for (const l of [...this.listeners]) {
        try {
          l(b);
        } catch (err) {
          process.emitWarning(`boltkv: an onCommit listener threw: ${String(err)}`);
        }
      }
    }
    for (const w of p.waiters) w.resolve();
  }

  private fail(cause: unknown, p: PendingCommit): void {
    this.failure = new MvccError('ERR_STORE_FAILED', `boltkv: a backend commit failed; reopen the store: ${String(cause)}`, { cause });
    const all = [...p.waiters, ...this.pending.waiters, ...this.compactions.flatMap((j) => j.waiters)];
    this.pending = newPending();
    for (const w of all) w.reject(this.failure);
  }

  /** Delete one bounded batch of revisions ≤ job.rev that the compaction does not keep. */
  private async compactStep(job: CompactionJob): Promise<void> {
    if (job.indexFrom !== undefined) {
      job.indexFrom = this.index.compactChunk(job.rev, job.indexFrom, INDEX_COMPACT_CHUNK, job.keep);
      return;
    }
    const limit = this.opts.compactionBatchLimit;
    let finished = false;
    let last: Uint8Array | undefined;
    try {
      await this.backend.update((w) => {
        const seen: Uint8Array[] = [];
        w.scan(KEY_BUCKET, job.next, mainRevPrefix(job.rev + 1), (k) => {
          seen.push(k.slice());
          return seen.length < limit;
        });
        for (const k of seen) {
          const rev = bytesToRev(k);
          if (!job.keep.has(revKeyId(rev.main, rev.sub))) w.delete(KEY_BUCKET, k);
        }
        if (seen.length < limit) {
          w.put(META_BUCKET, FINISHED_COMPACT_KEY, revToBytes(job.rev, 0));
          finished = true;
        } else {
          last = seen[seen.length - 1]!;
        }
      });
    } catch (e) {
      this.fail(e, newPending());
      return;
    }
    if (finished) {
      this.compactions.shift();
      for (const w of job.waiters) w.resolve();
    } else {
      const r = bytesToRev(last!);
      // resume just past the last key seen ((main, sub) is unique, tombstone or not)
      job.next = revToBytes(r.main, r.sub + 1);
    }
  }
}

function compareKV(c: NCompare, kv: KeyValue | undefined): boolean {
  let result: number;
  switch (c.target) {
    case 'VALUE': result = compareBytes(kv?.value ?? EMPTY, c.operand as Uint8Array); break;
    case 'VERSION': result = cmpNum(kv?.version ?? 0, c.operand as number); break;
    case 'CREATE': result = cmpNum(kv?.createRevision ?? 0, c.operand as number); break;
    case 'MOD': result = cmpNum(kv?.modRevision ?? 0, c.operand as number); break;
    case 'LEASE': result = cmpBig(kv?.lease ?? 0n, c.operand as bigint); break;
  }
  switch (c.result) {
    case 'EQUAL': return result === 0;
    case 'NOT_EQUAL': return result !== 0;
    case 'GREATER': return result > 0;
    case 'LESS': return result < 0;
  }
}
