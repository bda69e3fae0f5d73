/**
 * KVStore: the in-process counterpart of an etcd client connected to one member. Requests and
 * responses are etcd's (camelCase); writes resolve once durable. Also a few Client-style shortcuts
 * (`get`, `set`, `delete`) for code that does not want to spell out range requests.
 */
import { MvccError } from '../mvcc/errors.ts';
import type { MvccStore } from '../mvcc/store.ts';
import type {
  ApplyRequest,
  ApplyResponse,
  BytesLike,
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
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from '../mvcc/requests.ts';
import type { EventSource } from '../mvcc/types.ts';
import type { HashKVResult } from '../mvcc/hash.ts';
import type { ResponseHeader } from '../mvcc/requests.ts';
import { backendHash } from './backend-hash.ts';
import type { Readable } from 'node:stream';
import { etcdSnapshot } from '../bolt/backup.ts';
import type { DB, DefragmentOptions, DefragmentResult } from '../bolt/index.ts';
import type { Backend } from '../mvcc/backend.ts';
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import { type AlarmChange, AlarmStore, alarmText, checkAlarmMember, corruptCluster } from './alarm-store.ts';
import { txnIsReadOnly } from './txn-readonly.ts';
import { type AlarmMember, type AlarmType, costPut, costTxn, LEASE_COST, noSpace, SpaceQuota } from './quota.ts';

import type { AlarmResponse } from './maintenance.ts';
export type { AlarmResponse } from './maintenance.ts';
import { WatchHub } from '../watch/hub.ts';
import type { WatchHubOptions, WatchRequest, WatchStream, WatchStreamOptions, Watcher } from '../watch/types.ts';
import type { DeleteOptions, GetOptions, KV, KeyRangeOptions, SetOptions } from './kv.ts';
import type { DefragmentResponse, HashKVResponse, Maintenance } from './maintenance.ts';
import { prefixEnd } from './prefix.ts';

/** The etcd version whose API this store answers, with ours as build metadata (semver). */
export const SERVER_VERSION = '3.4.0+boltkv';

function options<T extends object>(o: unknown, what: string): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${what} options must be an object`);
  }
  return o as T;
}

function rangeEndFor(key: BytesLike, o: KeyRangeOptions): BytesLike | undefined {
  const set = (['prefix', 'fromKey', 'rangeEnd'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
  if (set.length > 1)
    throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${set.join(' and ')} exclude each other`);
  if (o.prefix !== undefined && typeof o.prefix !== 'boolean')
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: invalid request: prefix must be a boolean');
  if (o.fromKey !== undefined && typeof o.fromKey !== 'boolean')
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: invalid request: fromKey must be a boolean');
  if (o.prefix === true) return prefixEnd(key);
  if (o.fromKey === true) return new Uint8Array([0]);
  return o.rangeEnd;
}

export class KVStore implements KV, Maintenance {
  readonly #store: MvccStore;
  readonly #hub: WatchHub;
  #closed = false;

  readonly #backend: Backend | undefined;
  readonly #quota: SpaceQuota;
  /** The raised alarms, kept in the backend's alarm bucket (alarm-store.ts). */
  readonly #alarms: AlarmStore;
  /** The member this store's own alarms name (etcd names the member that raised one); see nameMember. */
  #memberId = 0n;

  /** @internal use openStore() */
  constructor(
    store: MvccStore,
    watchOptions?: WatchHubOptions,
    maintenance: { backend?: Backend; quotaBackendBytes?: number } = {},
  ) {
    this.#store = store;
    this.#hub = new WatchHub(store, watchOptions);
    this.#backend = maintenance.backend;
    this.#quota = new SpaceQuota(maintenance.quotaBackendBytes ?? 0, () => this.#store.status().dbSize);
    this.#alarms = maintenance.backend?.view((r) => AlarmStore.load(r)) ?? new AlarmStore();
  }

  /**
   * @internal The server that serves this store names it: the NOSPACE alarm the quota raises then
   * names that member, as etcd's does. Until then (in process) it names member 0.
   */
  nameMember(memberId: bigint): void {
    this.#memberId = memberId;
  }

  range(req: RangeRequest): Promise<RangeResponse> {
    return Promise.resolve().then(() => this.#store.range(req));
  }
  put(req: PutRequest): Promise<PutResponse> {
    // #writeChecked without its async frame and closures: a load holds a thousand puts in flight
    // across each commit, and whatever each holds is promoted by the scavenges meanwhile.
    let refused: Promise<never> | undefined;
    try {
      refused = this.#refused(costPut(req));
    } catch (e) {
      return Promise.reject(e);
    }
    return refused ?? this.#store.put(req);
  }
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#writeChecked(
      () => 0,
      () => this.#store.deleteRange(req),
    );
  }
  txn(req: TxnRequest): Promise<TxnResponse> {
    // A txn that only ranges is a read: no alarm refuses it (etcd serves it beside the applier).
    if (txnIsReadOnly(req)) return this.#store.txn(req);
    return this.#writeChecked(
      () => costTxn(req),
      () => this.#store.txn(req),
    );
  }
  compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.#writeChecked(
      () => 0,
      () => this.#store.compact(req),
    );
  }
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.#writeChecked(
      () => LEASE_COST,
      () => this.#store.leaseGrant(req),
    );
  }
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.#writeChecked(
      () => 0,
      () => this.#store.leaseRevoke(req),
    );
  }
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    return this.#store.leaseTimeToLive(req);
  }
  leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    return this.#store.leaseKeepAlive(req);
  }
  leaseLeases(): Promise<LeaseLeasesResponse> {
    return this.#store.leaseLeases();
  }

  /** etcd's Status: our version, the backend's size, the revision; no raft in process. */
  async status(): Promise<StatusResponse> {
    const s = this.#store.status();
    const errors = this.#alarms.list().map(alarmText);
    return { header: s.header, version: SERVER_VERSION, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse, errors };
  }

  /** Watch a key or range (see WatchRequest); iterate the result for responses. */
  watch(req: WatchRequest): Watcher {
    return this.#hub.watch(req);
  }
  /** A multiplexed watch stream, like one etcd Watch RPC. */
  watchStream(options?: WatchStreamOptions): WatchStream {
    return this.#hub.stream(options);
  }

  /** For a replication layer: apply a log entry once (see MvccStore.apply). */
  apply(index: number, req: ApplyRequest): Promise<ApplyResponse | undefined> {
    return this.#store.apply(index, req);
  }
  /** The last applied replication index, stored with the data it covers. */
  consistentIndex(): number {
    return this.#store.consistentIndex();
  }
  // ---- maintenance: quota alarms, defragment, snapshot

  /** The raised alarms (etcd's Alarm GET), only those of one type when `alarm` is given. */
  async alarmList(alarm?: AlarmType): Promise<AlarmResponse> {
    return { header: this.#store.status().header, alarms: this.#alarms.list(alarm) };
  }
  /**
   * etcd's Alarm DEACTIVATE: exactly the (member, type) pair given; without one, every raised
   * alarm (what clientv3 and `etcdctl alarm disarm` do). Answers the alarms cleared.
   */
  async alarmDisarm(alarm?: AlarmMember): Promise<AlarmResponse> {
    const which = alarm !== undefined ? [checkAlarmMember(alarm)] : this.#alarms.list();
    const cleared: AlarmMember[] = [];
    for (const a of which) {
      const r = await this.#alarmChange({ action: 'deactivate', memberId: a.memberId, alarm: a.alarm });
      if (r !== undefined) cleared.push(r);
    }
    return { header: this.#store.status().header, alarms: cleared };
  }
  /**
   * etcd's Alarm ACTIVATE: raises the alarm for that member (NOSPACE caps writes that add data,
   * CORRUPT refuses every write) and keeps it in the file. Answers the alarm, also when it was
   * already raised.
   */
  async alarmActivate(alarm: AlarmMember): Promise<AlarmResponse> {
    const a = checkAlarmMember(alarm);
    const r = await this.#alarmChange({ action: 'activate', memberId: a.memberId, alarm: a.alarm });
    return { header: this.#store.status().header, alarms: r === undefined ? [] : [r] };
  }

  /** One alarm change, made durable in the backend before it answers; undone in memory if the commit fails. */
  async #alarmChange(c: AlarmChange): Promise<AlarmMember | undefined> {
    if (this.#closed) throw new MvccError('ERR_CLOSED', 'boltkv: store is closed');
    const r = this.#alarms.apply(c);
    if (r.changed && this.#backend !== undefined) {
      try {
        await this.#backend.update((w) => {
          for (const write of r.writes) write(w);
        });
      } catch (e) {
        this.#alarms.apply({ ...c, action: c.action === 'activate' ? 'deactivate' : 'activate' });
        throw e;
      }
    }
    return r.answer;
  }

  /**
   * Rewrite the file densely while requests go on (see the engine's db.defragment()); writes wait
   * only for the short swap at the end. Needs the bolt backend.
   */
  defragment(options?: DefragmentOptions): Promise<DefragmentResult & DefragmentResponse> {
    return Promise.resolve()
      .then(() => this.#boltDB().defragment(options))
      .then((r) => ({ ...r, header: this.#store.status().header }));
  }

  /**
   * A consistent copy of the whole backend as a stream, as etcd's Snapshot RPC sends it: the bolt
   * file image of one read transaction, then its SHA-256 (32 bytes), so `etcdctl snapshot restore`
   * accepts it. Writes go on meanwhile. Needs the bolt backend. `size` is the image's byte count
   * (without the digest), known before the first byte, as etcd's remaining_bytes needs.
   */
  snapshot(options: { signal?: AbortSignal } = {}): Readable & { readonly size: number } {
    return etcdSnapshot(this.#boltDB().begin(false), options);
  }

  /** etcd's Maintenance.Hash: a CRC-32C of the whole backend (see backend-hash.ts) and the revision it covers. */
  async hash(): Promise<{ header: ResponseHeader; hash: number }> {
    const db = this.#boltDB();
    const header = this.#store.status().header;
    const tx = db.begin(false);
    try {
      return { header, hash: backendHash(tx) };
    } finally {
      tx.abort();
    }
  }

  #boltDB(): DB {
    if (this.#closed) throw new MvccError('ERR_CLOSED', 'boltkv: store is closed');
    if (!(this.#backend instanceof BoltBackend))
      throw new MvccError('ERR_UNSUPPORTED', 'boltkv: defragment and snapshot need a bolt file backend');
    return this.#backend.db;
  }

  /**
   * What the quota and the raised alarms let through: a write that does not fit the quota raises
   * this store's NOSPACE alarm and is refused; then (etcd's corrupt and capped appliers) nothing
   * with CORRUPT, and with NOSPACE nothing that adds data (cost > 0).
   */
  async #writeChecked<T>(cost: () => number, run: () => Promise<T>): Promise<T> {
    const refused = this.#refused(cost());
    if (refused !== undefined) return refused;
    return run();
  }

  /** The refusal of a write of this cost (see #writeChecked), or undefined when it may go on. */
  #refused(c: number): Promise<never> | undefined {
    // etcd checks the size first (before proposing), then its appliers refuse by the raised alarms.
    if (this.#quota.exceeds(c)) {
      return this.#alarmChange({ action: 'activate', memberId: this.#memberId, alarm: 'NOSPACE' }).then(() => {
        throw noSpace();
      });
    }
    if (this.#alarms.has('CORRUPT')) return Promise.reject(corruptCluster());
    if (c > 0 && this.#alarms.has('NOSPACE')) return Promise.reject(noSpace());
    return undefined;
  }

  /** etcd's HashKV: a CRC-32C of the key history up to `revision` (0: current), comparable with etcd's. */
  async hashKV(revision = 0): Promise<HashKVResult & HashKVResponse> {
    const h = await this.#store.hashKV(revision);
    return { ...h, header: { revision: h.revision } };
  }
  /** The store's newest revision. */
  revision(): number {
    return this.#store.revision();
  }
  /** The revision feed for other layers (what the watch hub runs on). */
  get events(): EventSource {
    return this.#store;
  }

  // ---- Client-style shortcuts

  /** `get('a')`, `get('a', { prefix: true })`, `get('a', { fromKey: true, limit: 10 })`. */
  async get(key: BytesLike, opts?: GetOptions): Promise<RangeResponse> {
    const o = options<GetOptions>(opts, 'get');
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = o;
    return this.range({ ...rest, key, rangeEnd: rangeEndFor(key, o) });
  }
  /** `set('a', '1')` is `put({ key: 'a', value: '1' })`. */
  async set(key: BytesLike, value: BytesLike, opts?: SetOptions): Promise<PutResponse> {
    return this.put({ ...options<SetOptions>(opts, 'set'), key, value });
  }
  /** `delete('a', { prefix: true })`. */
  async delete(key: BytesLike, opts?: DeleteOptions): Promise<DeleteRangeResponse> {
    const o = options<DeleteOptions>(opts, 'delete');
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = o;
    return this.deleteRange({ ...rest, key, rangeEnd: rangeEndFor(key, o) });
  }

  /** Wait for queued writes, stop watches and timers, close the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.close();
    await this.#store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
