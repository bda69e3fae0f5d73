/**
 * KV: what `openStore` returns, as a contract. Only etcd's requests and responses appear here, so any
 * implementation that speaks etcd v3 (a remote client over etcd's gateway, a replicated store) can
 * `implements KV` and be used interchangeably with the in-process store.
 *
 * int64 fields: lease IDs are lossless (`bigint` in every response, including KeyValue.lease; input
 * accepts bigint, a safe-integer number or a decimal string). Revisions are JS numbers; a revision
 * input beyond 2^53 (also as bigint or string) answers etcd's "future revision".
 */
import type {
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
import type { WatchRequest, WatchStream, WatchStreamOptions, Watcher } from '../watch/types.ts';

export type * from '../mvcc/requests.ts';
export type { KeyValue, Event } from '../mvcc/types.ts';
export type {
  WatchRequest,
  WatchResponse,
  WatchResponseHeader,
  WatchStream,
  WatchStreamOptions,
  Watcher,
  WatchFilter,
  WatchKey,
} from '../watch/types.ts';

/** Options of the Client-style shortcuts: how `key` turns into a range (at most one of them). */
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

/** etcd's KV, Lease, Watch and Maintenance.Status services, plus a few Client-style shortcuts. */
export interface KV extends AsyncDisposable {
  /** Keys in a range at a revision (etcd's Range). */
  range(req: RangeRequest): Promise<RangeResponse>;
  /** Resolves once the write is durable. */
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  /** If every compare holds, `success` runs, else `failure`; all of it in one revision. */
  txn(req: TxnRequest): Promise<TxnResponse>;
  /** Discard history below a revision. */
  compact(req: CompactionRequest): Promise<CompactionResponse>;

  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  /** Revoke a lease, deleting its keys (in one revision). */
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse>;
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  /** One keepalive: renews the lease to its granted TTL. */
  leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;

  /** Watch a key or range; iterate the result for responses. */
  watch(req: WatchRequest): Watcher;
  /**
   * Many watches multiplexed on one response sequence, like one etcd Watch RPC. With
   * `{ createdNotify: true }` it answers response by response as etcd's RPC does (created answers,
   * in-stream refusals); without, as clientv3 shows it. A remote client's stream, which is the
   * RPC itself, answers as with `createdNotify` either way.
   */
  watchStream(options?: WatchStreamOptions): WatchStream;

  /** etcd's Maintenance.Status. */
  status(): Promise<StatusResponse>;

  /** `get('a')`, `get('a', { prefix: true })`, `get('a', { fromKey: true, limit: 10 })`. */
  get(key: BytesLike, opts?: GetOptions): Promise<RangeResponse>;
  /** `set('a', '1')` is `put({ key: 'a', value: '1' })`. */
  set(key: BytesLike, value: BytesLike, opts?: SetOptions): Promise<PutResponse>;
  /** `delete('a', { prefix: true })`. */
  delete(key: BytesLike, opts?: DeleteOptions): Promise<DeleteRangeResponse>;

  /** Finish what is in flight, stop watches, release resources. Idempotent. */
  close(): Promise<void>;
}
