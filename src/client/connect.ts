/**
 * connect(): a `KV` that speaks etcd's JSON gateway, to a real etcd 3.4+ cluster or `boltkv serve`.
 * Plain calls are HTTP POSTs over keep-alive connections (see http-transport.ts for failover and
 * timeouts), watches run over WebSocket and survive a member going away (remote-watch.ts), and
 * `lease(ttl)` keeps a lease alive in the background (lease-keeper.ts).
 */
import type {
  BytesLike,
  CompactionRequest,
  CompactionResponse,
  DeleteOptions,
  DeleteRangeRequest,
  DeleteRangeResponse,
  GetOptions,
  KV,
  KeyRangeOptions,
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
  RequestOp,
  SetOptions,
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from '../api/kv.ts';
import type {
  AlarmMember,
  AlarmResponse,
  DefragmentResponse,
  HashKVResponse,
  Maintenance,
  SnapshotOptions,
} from '../api/maintenance.ts';
import { keyBytes, prefixEndBytes } from '../keys.ts';
import type { Readable } from 'node:stream';
import { MvccError } from '../mvcc/errors.ts';
import type { WatchRequest, WatchStream, WatchStreamOptions, Watcher } from '../watch/types.ts';
import { EndpointPool, parseEndpoints } from './endpoints.ts';
import { ClientError } from './errors.ts';
import { HttpTransport, type CallOptions } from './http-transport.ts';
import { KeptLease } from './lease-keeper.ts';
import { RemoteWatchStream, RemoteWatcher, type RemoteWatchOptions } from './remote-watch.ts';
import { snapshotStream } from './snapshot-stream.ts';
import * as wire from './wire.ts';

export interface ConnectOptions {
  /** Client URLs of the members, e.g. ['http://127.0.0.1:2379']. Tried in order; the first that answers is used until it fails. */
  endpoints: string[];
  /** Deadline of each call, failover included (ms). Default 10,000. */
  timeoutMs?: number;
  /** Deadline of one WebSocket handshake (ms). Default 3,000. */
  connectTimeoutMs?: number;
  /** A watch whose stream finds no endpoint for this long ends with ERR_UNAVAILABLE (ms). Default 30,000. */
  watchReconnectTimeoutMs?: number;
  /** Ping period of watch connections; an unanswered ping drops the connection (ms, 0 = off). Default 10,000. */
  watchPingIntervalMs?: number;
  /** Watch responses buffered before reading pauses. Default 1,024. */
  watchBufferResponses?: number;
  /** Largest answer accepted, HTTP body or WebSocket message (bytes). Default 64 MiB. */
  maxResponseBytes?: number;
  /** How long a failed endpoint is tried last (ms). Default 1,000. */
  failoverCooldownMs?: number;
}

function positive(v: unknown, name: string, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ClientError(
      'ERR_INVALID_OPTION',
      `boltkv: connect() option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return v;
}

/** Connect to an etcd cluster (or boltkv serve). No connection is made until the first call. */
export function connect(options: ConnectOptions): Client {
  return new Client(options);
}

function rangeEndFor(key: BytesLike, o: KeyRangeOptions): BytesLike | undefined {
  if (o.prefix === true) {
    const k = keyBytes(key);
    if (k === undefined) throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: key must be a Uint8Array or a string');
    return prefixEndBytes(k);
  }
  if (o.fromKey === true) return new Uint8Array([0]);
  return o.rangeEnd;
}

function options<T extends object>(o: T | undefined, what: string): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== 'object')
    throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: ${what} options must be an object`);
  return o;
}

/** A txn made only of ranges changes nothing, so it may be sent again. */
function readOnlyOps(ops: RequestOp[] | undefined): boolean {
  if (ops === undefined) return true;
  if (!Array.isArray(ops)) return false;
  return ops.every((op) => {
    if (op === null || typeof op !== 'object') return false;
    if ('requestRange' in op && op.requestRange !== undefined) return true;
    if ('requestTxn' in op && op.requestTxn !== undefined)
      return readOnlyOps(op.requestTxn.success) && readOnlyOps(op.requestTxn.failure);
    return false;
  });
}

const IDEMPOTENT: CallOptions = { retry: 'idempotent' };
const ONCE: CallOptions = { retry: 'once' };

export class Client implements KV, Maintenance {
  readonly #pool: EndpointPool;
  readonly #http: HttpTransport;
  readonly #watchOpts: RemoteWatchOptions;
  readonly #streams = new Set<RemoteWatchStream>();
  readonly #leases = new Set<KeptLease>();
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  #closed = false;

  constructor(opts: ConnectOptions) {
    if (opts === null || typeof opts !== 'object')
      throw new ClientError('ERR_INVALID_OPTION', 'boltkv: connect() needs an options object');
    const timeoutMs = positive(opts.timeoutMs, 'timeoutMs', 10_000);
    const maxResponseBytes = positive(opts.maxResponseBytes, 'maxResponseBytes', 64 * 1024 * 1024);
    this.#pool = new EndpointPool(parseEndpoints(opts.endpoints), {
      cooldownMs: positive(opts.failoverCooldownMs, 'failoverCooldownMs', 1000, true),
    });
    this.#http = new HttpTransport(this.#pool, { timeoutMs, maxResponseBytes });
    this.#timeoutMs = timeoutMs;
    this.#maxResponseBytes = maxResponseBytes;
    this.#watchOpts = {
      connectTimeoutMs: positive(opts.connectTimeoutMs, 'connectTimeoutMs', 3000),
      reconnectTimeoutMs: positive(opts.watchReconnectTimeoutMs, 'watchReconnectTimeoutMs', 30_000),
      pingIntervalMs: positive(opts.watchPingIntervalMs, 'watchPingIntervalMs', 10_000, true),
      highWater: Math.floor(positive(opts.watchBufferResponses, 'watchBufferResponses', 1024)),
      maxMessageBytes: maxResponseBytes,
    };
  }

  /** The endpoints, in the order given. */
  get endpoints(): string[] {
    return this.#pool.endpoints.map((e) => e.url);
  }

  async #call<T>(path: string, name: string, req: unknown, decode: (text: string) => T, how: CallOptions): Promise<T> {
    if (this.#closed) throw new ClientError('ERR_CLOSED', 'boltkv: the client is closed');
    return this.#http.post(path, wire.encode(name, req), decode, how);
  }

  range(req: RangeRequest): Promise<RangeResponse> {
    return this.#call('/v3/kv/range', 'RangeRequest', req, wire.decodeRange, IDEMPOTENT);
  }
  put(req: PutRequest): Promise<PutResponse> {
    return this.#call('/v3/kv/put', 'PutRequest', req, wire.decodePut, ONCE);
  }
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#call('/v3/kv/deleterange', 'DeleteRangeRequest', req, wire.decodeDeleteRange, ONCE);
  }
  txn(req: TxnRequest): Promise<TxnResponse> {
    const ro = req !== null && typeof req === 'object' && readOnlyOps(req.success) && readOnlyOps(req.failure);
    return this.#call('/v3/kv/txn', 'TxnRequest', req, wire.decodeTxn, ro ? IDEMPOTENT : ONCE);
  }
  compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.#call('/v3/kv/compaction', 'CompactionRequest', req, wire.decodeCompaction, ONCE);
  }
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.#call('/v3/lease/grant', 'LeaseGrantRequest', req, wire.decodeLeaseGrant, ONCE);
  }
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.#call('/v3/lease/revoke', 'LeaseRevokeRequest', req, wire.decodeLeaseRevoke, ONCE);
  }
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    return this.#call('/v3/lease/timetolive', 'LeaseTimeToLiveRequest', req, wire.decodeTimeToLive, IDEMPOTENT);
  }
  leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    return this.#call('/v3/lease/keepalive', 'LeaseKeepAliveRequest', req, wire.decodeKeepAlive, IDEMPOTENT);
  }
  leaseLeases(): Promise<LeaseLeasesResponse> {
    return this.#call('/v3/lease/leases', 'LeaseLeasesRequest', {}, wire.decodeLeases, IDEMPOTENT);
  }
  /** etcd's Maintenance.Status of whichever member answers. */
  status(): Promise<StatusResponse> {
    return this.#call('/v3/maintenance/status', 'StatusRequest', {}, wire.decodeStatus, IDEMPOTENT);
  }
  /** etcd's Cluster.MemberList. */
  memberList(): Promise<wire.MemberListResponse> {
    return this.#call('/v3/cluster/member/list', 'MemberListRequest', {}, wire.decodeMemberList, IDEMPOTENT);
  }
  /** etcd's Cluster.MemberAdd: a voter, or a learner that must catch up before it is promoted. */
  memberAdd(req: { peerURLs: string[]; isLearner?: boolean }): Promise<wire.MemberAddResponse> {
    return this.#call('/v3/cluster/member/add', 'MemberAddRequest', req, wire.decodeMemberAdd, ONCE);
  }
  memberRemove(ID: bigint): Promise<wire.MemberListResponse> {
    return this.#call(
      '/v3/cluster/member/remove',
      'MemberRemoveRequest',
      { ID },
      wire.decodeMembers('MemberRemoveResponse'),
      ONCE,
    );
  }
  memberUpdate(ID: bigint, peerURLs: string[]): Promise<wire.MemberListResponse> {
    return this.#call(
      '/v3/cluster/member/update',
      'MemberUpdateRequest',
      { ID, peerURLs },
      wire.decodeMembers('MemberUpdateResponse'),
      ONCE,
    );
  }
  memberPromote(ID: bigint): Promise<wire.MemberListResponse> {
    return this.#call(
      '/v3/cluster/member/promote',
      'MemberPromoteRequest',
      { ID },
      wire.decodeMembers('MemberPromoteResponse'),
      ONCE,
    );
  }

  // ---- Maintenance: of whichever member answers; connect to one endpoint to address a member.

  /**
   * etcd's HashKV at `revision` (0: current). etcd 3.4's gateway routes /v3/maintenance/hash to
   * Hash, so it has no path to HashKV: against it this fails with ERR_UNSUPPORTED.
   */
  async hashKV(revision = 0): Promise<HashKVResponse> {
    try {
      return await this.#call('/v3/maintenance/hashkv', 'HashKVRequest', { revision }, wire.decodeHashKV, IDEMPOTENT);
    } catch (e) {
      if (e instanceof ClientError && e.httpStatus === 404) {
        throw new ClientError(
          'ERR_UNSUPPORTED',
          `boltkv: ${e.endpoint ?? 'the server'} has no HashKV on its gateway (etcd 3.4 routes only Hash there; 3.5 adds /v3/maintenance/hashkv)`,
          { endpoint: e.endpoint, httpStatus: 404, cause: e },
        );
      }
      throw e;
    }
  }
  /** etcd's Defragment of the member that answers; sent once (never failed over to another member). */
  defragment(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<DefragmentResponse> {
    if (this.#closed) return Promise.reject(new ClientError('ERR_CLOSED', 'boltkv: the client is closed'));
    return this.#http.post('/v3/maintenance/defragment', wire.encode('DefragmentRequest', {}), wire.decodeDefragment, {
      ...ONCE,
      ...opts,
    });
  }
  alarmList(): Promise<AlarmResponse> {
    return this.#call(
      '/v3/maintenance/alarm',
      'AlarmRequest',
      { action: 'GET', memberID: 0n, alarm: 'NONE' },
      wire.decodeAlarm,
      IDEMPOTENT,
    );
  }
  /**
   * Clears exactly the (member, type) alarm given; without one, every raised alarm (clientv3's
   * AlarmDisarm with an empty member, what etcdctl alarm disarm does: the alarms listed, each deactivated).
   */
  async alarmDisarm(alarm?: AlarmMember): Promise<AlarmResponse> {
    const raised = alarm !== undefined ? { alarms: [alarm] } : await this.alarmList();
    const out: AlarmResponse = { alarms: [] };
    for (const a of raised.alarms) {
      const r = await this.#call(
        '/v3/maintenance/alarm',
        'AlarmRequest',
        { action: 'DEACTIVATE', memberID: a.memberId, alarm: a.alarm },
        wire.decodeAlarm,
        IDEMPOTENT,
      );
      out.alarms.push(...r.alarms);
    }
    return out;
  }
  /**
   * The database of the member that answers, as etcd streams it: the bolt image, then its SHA-256
   * (checked here). Fails with ERR_TIMEOUT when no byte comes for the call timeout.
   */
  snapshot(opts: SnapshotOptions = {}): Readable {
    if (this.#closed) throw new ClientError('ERR_CLOSED', 'boltkv: the client is closed');
    return snapshotStream(this.#pool, {
      idleTimeoutMs: this.#timeoutMs,
      maxLineBytes: this.#maxResponseBytes,
      signal: opts.signal,
    });
  }

  /**
   * Grant a lease of `ttl` seconds and keep it alive until closed, revoked or lost. `lease.lost`
   * resolves (and `lease.signal` aborts) when it is lost; `await using` revokes it.
   */
  async lease(ttl: number, opts: { ID?: bigint | number | string } = {}): Promise<KeptLease> {
    const g = await this.leaseGrant({ TTL: ttl, ...(opts.ID === undefined ? {} : { ID: opts.ID }) });
    if (this.#closed) throw new ClientError('ERR_CLOSED', 'boltkv: the client is closed');
    const l = new KeptLease(
      g.ID,
      g.TTL,
      {
        keepAlive: (id) => this.leaseKeepAlive({ ID: id }),
        revoke: (id) => this.leaseRevoke({ ID: id }),
      },
      (x) => this.#leases.delete(x),
    );
    this.#leases.add(l);
    return l;
  }

  #stream(single: boolean, rpc = false): RemoteWatchStream {
    if (this.#closed) throw new ClientError('ERR_CLOSED', 'boltkv: the client is closed');
    const s = new RemoteWatchStream(this.#pool, this.#watchOpts, single, (x) => this.#streams.delete(x), rpc);
    this.#streams.add(s);
    return s;
  }

  watch(req: WatchRequest): Watcher {
    const s = this.#stream(true);
    try {
      return new RemoteWatcher(s, req);
    } catch (e) {
      s.close();
      throw e;
    }
  }
  /** As the in-process store's: clientv3's view by default, etcd's server answers with `createdNotify`. */
  watchStream(options: WatchStreamOptions = {}): WatchStream {
    return this.#stream(false, options.createdNotify === true);
  }

  get(key: BytesLike, opts?: GetOptions): Promise<RangeResponse> {
    try {
      const o = options(opts, 'get');
      const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = o;
      return this.range({ ...rest, key, rangeEnd: rangeEndFor(key, o) });
    } catch (e) {
      return Promise.reject(e);
    }
  }
  set(key: BytesLike, value: BytesLike, opts?: SetOptions): Promise<PutResponse> {
    try {
      return this.put({ ...options(opts, 'set'), key, value });
    } catch (e) {
      return Promise.reject(e);
    }
  }
  delete(key: BytesLike, opts?: DeleteOptions): Promise<DeleteRangeResponse> {
    try {
      const o = options(opts, 'delete');
      return this.deleteRange({ key, rangeEnd: rangeEndFor(key, o), prevKv: o.prevKv });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Stop watches and lease helpers (leases then expire by TTL), abort calls in flight, drop connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of [...this.#leases]) l.close();
    for (const s of [...this.#streams]) s.close();
    this.#http.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
