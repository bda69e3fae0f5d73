/**
 * KVStore: the in-process counterpart of an etcd client connected to one member. Requests and
 * responses are etcd's (camelCase); writes resolve once durable. Also a few Client-style shortcuts
 * (`get`, `set`, `delete`) for code that does not want to spell out range requests.
 */
import type { MvccStore } from '../mvcc/store.ts';
import { prefixEnd } from '../mvcc/store.ts';
import type {
  ApplyRequest, ApplyResponse, BytesLike, CompactionRequest, CompactionResponse, DeleteRangeRequest,
  DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
  LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
  PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
} from '../mvcc/requests.ts';
import type { EventSource } from '../mvcc/types.ts';
import type { HashKVResult } from '../mvcc/hash.ts';
import { WatchHub } from '../watch/hub.ts';
import type { WatchHubOptions, WatchRequest, WatchStream, Watcher } from '../watch/types.ts';

/** Options of the Client-style shortcuts: how `key` turns into a range. */
export interface KeyRangeOptions {
  /** Every key starting with `key`. */
  prefix?: boolean;
  /** Every key ≥ `key`. */
  fromKey?: boolean;
  /** [key, rangeEnd). */
  rangeEnd?: BytesLike;
}

export type GetOptions = KeyRangeOptions & Omit<RangeRequest, 'key' | 'rangeEnd'>;
export type DeleteOptions = KeyRangeOptions & { prevKv?: boolean };
export type SetOptions = Omit<PutRequest, 'key' | 'value'>;

function rangeEndFor(key: BytesLike, o: KeyRangeOptions): BytesLike | undefined {
  if (o.prefix === true) return prefixEnd(key);
  if (o.fromKey === true) return new Uint8Array([0]);
  return o.rangeEnd;
}

export class KVStore {
  readonly #store: MvccStore;
  readonly #hub: WatchHub;
  #closed = false;

  /** @internal use openStore() */
  constructor(store: MvccStore, watchOptions?: WatchHubOptions) {
    this.#store = store;
    this.#hub = new WatchHub(store, watchOptions);
  }

  range(req: RangeRequest): Promise<RangeResponse> {
    return Promise.resolve().then(() => this.#store.range(req));
  }
  put(req: PutRequest): Promise<PutResponse> {
    return this.#store.put(req);
  }
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#store.deleteRange(req);
  }
  txn(req: TxnRequest): Promise<TxnResponse> {
    return this.#store.txn(req);
  }
  compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.#store.compact(req);
  }
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.#store.leaseGrant(req);
  }
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.#store.leaseRevoke(req);
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

  /** Watch a key or range (see WatchRequest); iterate the result for responses. */
  watch(req: WatchRequest): Watcher {
    return this.#hub.watch(req);
  }
  /** A multiplexed watch stream, like one etcd Watch RPC. */
  watchStream(): WatchStream {
    return this.#hub.stream();
  }

  /** For a replication layer: apply a log entry once (see MvccStore.apply). */
  apply(index: number, req: ApplyRequest): Promise<ApplyResponse | undefined> {
    return this.#store.apply(index, req);
  }
  /** The last applied replication index, stored with the data it covers. */
  consistentIndex(): number {
    return this.#store.consistentIndex();
  }
  /** etcd's HashKV: a CRC-32C of the key history up to `revision` (0: current), comparable with etcd's. */
  hashKV(revision = 0): Promise<HashKVResult> {
    return this.#store.hashKV(revision);
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
  get(key: BytesLike, opts: GetOptions = {}): Promise<RangeResponse> {
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = opts;
    return this.range({ ...rest, key, rangeEnd: rangeEndFor(key, opts) });
  }
  /** `set('a', '1')` is `put({ key: 'a', value: '1' })`. */
  set(key: BytesLike, value: BytesLike, opts: SetOptions = {}): Promise<PutResponse> {
    return this.put({ ...opts, key, value });
  }
  /** `delete('a', { prefix: true })`. */
  delete(key: BytesLike, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    return this.deleteRange({ key, rangeEnd: rangeEndFor(key, opts), prevKv: opts.prevKv });
  }

  /** Wait for queued writes, stop watches and timers, close the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.close();
    await this.#store.close();
  }
}
