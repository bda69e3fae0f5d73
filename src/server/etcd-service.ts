/**
 * etcd's unary gRPC services (KV, Lease, Maintenance, Cluster) over a boltkv store, transport-free:
 * a decoded request in, the response object etcd would marshal out (or a thrown typed error). What
 * etcd adds around the store lives here: the response header with cluster and member ids, the
 * shapes of responses nested in a txn, the size limits, and etcd's answers for calls a store lacks.
 */
import { BoltkvError } from '../errors.ts';
import { GatewayError, GrpcCode } from '../gateway/errors.ts';
import { GRPC_OVERHEAD_BYTES, protoSize, raftRequestSize } from '../gateway/proto-size.ts';
import type { Decoded } from '../gateway/codec.ts';
import type { ServedKV } from './served-kv.ts';
import type { ClusterApi, MemberInfo } from '../replication/index.ts';
import type { AlarmMember, AlarmResponse, AlarmType } from '../api/maintenance.ts';

export interface ServiceIdentity {
  clusterId: bigint;
  memberId: bigint;
  name: string;
  clientURLs: string[];
  peerURLs: string[];
  /** A replicated member's cluster operations; without it the server is a one-member cluster. */
  cluster?: ClusterApi;
}

export class RequestTooLargeError extends BoltkvError {
  declare readonly code: 'ERR_REQUEST_TOO_LARGE';
  constructor() {
    super('ERR_REQUEST_TOO_LARGE', 'etcdserver: request is too large');
    this.name = 'RequestTooLargeError';
  }
}

/** What a gRPC server says for a method it does not implement (HTTP 501 on the gateway). */
export function unimplemented(method: string, service: string): GatewayError {
  return new GatewayError(
    'ERR_REMOTE',
    `unknown method ${method} for service etcdserverpb.${service}`,
    GrpcCode.Unimplemented,
    501,
  );
}

/** gRPC's receive limit, refused before the request reaches etcd. */
export function grpcTooLarge(size: number, max: number): GatewayError {
  return new GatewayError(
    'ERR_REMOTE',
    `grpc: received message larger than max (${size} vs. ${max})`,
    GrpcCode.ResourceExhausted,
    429,
  );
}

type Handler = (req: Decoded) => Promise<unknown>;

/** One served method: which message it reads and writes, and how. */
export interface Method {
  request: string;
  response: string;
  call: Handler;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A lease ID for the store: a number where exact, the bigint otherwise. */
function id(v: unknown): never {
  if (typeof v === 'bigint' && v >= -SAFE && v <= SAFE) return Number(v) as never;
  return (v ?? 0) as never;
}

/**
 * Revisions, limits and TTLs as numbers. Beyond ±2^53 the value is clamped to the largest safe one:
 * no store reaches that revision, so the answer (a future revision, no limit) is the same.
 */
function int64(v: unknown): never {
  if (typeof v === 'bigint') return Number(v > SAFE ? SAFE : v < -SAFE ? -SAFE : v) as never;
  return (v ?? 0) as never;
}

export class EtcdService {
  readonly #kv: ServedKV;
  readonly #ident: ServiceIdentity;
  readonly #maxRequestBytes: number;
  readonly methods: ReadonlyMap<string, Method>;

  constructor(kv: ServedKV, ident: ServiceIdentity, maxRequestBytes: number) {
    this.#kv = kv;
    this.#ident = ident;
    this.#maxRequestBytes = maxRequestBytes;
    this.methods = this.#table();
    // A single store's own NOSPACE alarm names this server, as etcd's names the member that raised it.
    if (ident.cluster === undefined) (kv as { nameMember?: (id: bigint) => void }).nameMember?.(ident.memberId);
  }

  /** The response header etcd puts on top-level responses. */
  header(revision: number | undefined): Record<string, unknown> {
    return { clusterId: this.#ident.clusterId, memberId: this.#ident.memberId, revision, raftTerm: this.#raftTerm() };
  }

  /** etcd fills every header's raft_term from its raft node; a lone member without raft says 0. */
  #raftTerm(): number {
    return this.#ident.cluster?.memberStatus().raftTerm ?? 0;
  }

  get identity(): ServiceIdentity {
    return this.#ident;
  }

  get maxRequestBytes(): number {
    return this.#maxRequestBytes;
  }

  /** etcd's two size checks: gRPC's receive limit for every call, the proposal limit for writes. */
  checkSize(requestName: string, req: Decoded): void {
    const grpcMax = this.#maxRequestBytes + GRPC_OVERHEAD_BYTES;
    const size = protoSize(requestName, req);
    if (size > grpcMax) throw grpcTooLarge(size, grpcMax);
    const raft = raftRequestSize(requestName, req);
    if (raft !== undefined && raft > this.#maxRequestBytes) throw new RequestTooLargeError();
  }

  /** The store's revision now (synchronously where the store can say). */
  async currentRevision(): Promise<number> {
    const sync = (this.#kv as unknown as { revision?: unknown }).revision;
    if (typeof sync === 'function') return (sync as () => number).call(this.#kv);
    const r = await this.#kv.range({ key: new Uint8Array([0]), countOnly: true, limit: 1 });
    return r.header.revision;
  }

  #top<T extends { header: { revision: number } }>(resp: T): T {
    return { ...resp, header: this.header(resp.header.revision) };
  }

  /** One member, no raft: member list shows this server; changes to membership are unimplemented. */
  #singleMemberTable(add: (path: string, request: string, response: string, call: Handler) => void): void {
    add('/v3/maintenance/transfer-leadership', 'StatusRequest', 'StatusResponse', async () => {
      throw unimplemented('MoveLeader', 'Maintenance');
    });
    add('/v3/cluster/member/list', 'MemberListRequest', 'MemberListResponse', async () => ({
      header: { clusterId: this.#ident.clusterId, memberId: this.#ident.memberId, raftTerm: 0 },
      members: [
        {
          ID: this.#ident.memberId,
          name: this.#ident.name,
          peerURLs: this.#ident.peerURLs,
          clientURLs: this.#ident.clientURLs,
        },
      ],
    }));
    for (const [p, method] of [
      ['add', 'MemberAdd'],
      ['remove', 'MemberRemove'],
      ['update', 'MemberUpdate'],
      ['promote', 'MemberPromote'],
    ] as const) {
      add(`/v3/cluster/member/${p}`, 'StatusRequest', 'StatusResponse', async () => {
        throw unimplemented(method, 'Cluster');
      });
    }
  }

  /** etcd's Cluster service and MoveLeader, answered by a replicated member. */
  #clusterTable(
    cluster: ClusterApi,
    add: (path: string, request: string, response: string, call: Handler) => void,
  ): void {
    const header = (): Record<string, unknown> => ({
      clusterId: this.#ident.clusterId,
      memberId: this.#ident.memberId,
      raftTerm: this.#raftTerm(),
    });
    const member = (m: MemberInfo): Record<string, unknown> => ({
      ID: BigInt(m.id),
      name: m.name,
      peerURLs: m.peerURLs,
      // Members do not publish client URLs to each other yet: this member knows its own.
      clientURLs: BigInt(m.id) === this.#ident.memberId ? this.#ident.clientURLs : m.clientURLs,
      isLearner: m.isLearner,
    });
    add('/v3/cluster/member/list', 'MemberListRequest', 'MemberListResponse', async () => ({
      header: header(),
      members: cluster.memberList().map(member),
    }));
    add('/v3/cluster/member/add', 'MemberAddRequest', 'MemberAddResponse', async (r) => {
      const peerURLs = strings(r.peerURLs);
      if (peerURLs.length === 0)
        throw new GatewayError('ERR_REMOTE', 'etcdserver: bad peer URLs', GrpcCode.InvalidArgument, 400);
      const res = await cluster.memberAdd({ peerURLs, isLearner: r.isLearner === true });
      return { header: header(), member: member(res.member), members: res.members.map(member) };
    });
    add('/v3/cluster/member/remove', 'MemberRemoveRequest', 'MemberRemoveResponse', async (r) => ({
      header: header(),
      members: (await cluster.memberRemove(memberNumber(r.ID))).map(member),
    }));
    add('/v3/cluster/member/update', 'MemberUpdateRequest', 'MemberUpdateResponse', async (r) => ({
      header: header(),
      members: (await cluster.memberUpdate(memberNumber(r.ID), strings(r.peerURLs))).map(member),
    }));
    add('/v3/cluster/member/promote', 'MemberPromoteRequest', 'MemberPromoteResponse', async (r) => ({
      header: header(),
      members: (await cluster.memberPromote(memberNumber(r.ID))).map(member),
    }));
    add('/v3/maintenance/transfer-leadership', 'MoveLeaderRequest', 'MoveLeaderResponse', async (r) => {
      await cluster.transferLeadership(memberNumber(r.targetID));
      return { header: header() };
    });
  }

  #table(): Map<string, Method> {
    const kv = this.#kv;
    const m = new Map<string, Method>();
    const add = (path: string, request: string, response: string, call: Handler): void => {
      m.set(path, { request, response, call });
    };
    add('/v3/kv/range', 'RangeRequest', 'RangeResponse', async (r) => this.#top(await kv.range(rangeReq(r))));
    add('/v3/kv/put', 'PutRequest', 'PutResponse', async (r) => this.#top(await kv.put(putReq(r))));
    add('/v3/kv/deleterange', 'DeleteRangeRequest', 'DeleteRangeResponse', async (r) =>
      this.#top(await kv.deleteRange(delReq(r))),
    );
    add('/v3/kv/txn', 'TxnRequest', 'TxnResponse', async (r) => {
      const resp = await kv.txn(txnReq(r));
      return {
        header: this.header(resp.header.revision),
        succeeded: resp.succeeded,
        responses: nestedResponses(resp.responses),
      };
    });
    add('/v3/kv/compaction', 'CompactionRequest', 'CompactionResponse', async (r) =>
      this.#top(await kv.compact({ revision: int64(r.revision), physical: r.physical === true })),
    );

    const grant: Handler = async (r) => this.#top(await kv.leaseGrant({ TTL: int64(r.TTL), ID: id(r.ID) }));
    const revoke: Handler = async (r) => this.#top(await kv.leaseRevoke({ ID: id(r.ID) }));
    const ttl: Handler = async (r) => this.#top(await kv.leaseTimeToLive({ ID: id(r.ID), keys: r.keys === true }));
    const leases: Handler = async () => this.#top(await kv.leaseLeases());
    add('/v3/lease/grant', 'LeaseGrantRequest', 'LeaseGrantResponse', grant);
    add('/v3/lease/revoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse', revoke);
    add('/v3/kv/lease/revoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse', revoke);
    add('/v3/lease/timetolive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse', ttl);
    add('/v3/kv/lease/timetolive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse', ttl);
    add('/v3/lease/leases', 'LeaseLeasesRequest', 'LeaseLeasesResponse', leases);
    add('/v3/kv/lease/leases', 'LeaseLeasesRequest', 'LeaseLeasesResponse', leases);

    add('/v3/maintenance/status', 'StatusRequest', 'StatusResponse', async () => this.#status());
    add('/v3/maintenance/alarm', 'AlarmRequest', 'AlarmResponse', async (r) => {
      const m = kv as unknown as {
        alarmList?: () => Promise<AlarmResponse>;
        alarmDisarm?: (a: AlarmMember) => Promise<AlarmResponse>;
        alarmActivate?: (a: AlarmMember) => Promise<AlarmResponse>;
      };
      const action = r.action ?? 'GET';
      const type = r.alarm === 'NOSPACE' || r.alarm === 'CORRUPT' ? (r.alarm as AlarmType) : undefined;
      const memberId = typeof r.memberID === 'bigint' ? r.memberID : 0n;
      let resp: AlarmResponse | undefined;
      if (action === 'GET') {
        // GET with a type lists that type's alarms only; NONE lists them all, a number outside the enum none.
        if (type === undefined && r.alarm !== undefined && r.alarm !== 'NONE') return {};
        const all = await m.alarmList?.call(kv);
        resp = all && { alarms: all.alarms.filter((a) => type === undefined || a.alarm === type) };
      } else if (type === undefined) {
        // Raising or clearing the NONE type changes nothing (etcd 3.4 panics on ACTIVATE NONE of member 0
        // and keeps a typeless alarm for another member; later etcd answers this).
        return {};
      } else if (action === 'ACTIVATE') {
        if (m.alarmActivate === undefined) throw unimplemented('Alarm', 'Maintenance');
        resp = await m.alarmActivate.call(kv, { memberId, alarm: type });
      } else if (action === 'DEACTIVATE') {
        // Exactly the (member, type) pair asked, member 0 included: etcdctl lists, then disarms each.
        resp = await m.alarmDisarm?.call(kv, { memberId, alarm: type });
      } else {
        return {}; // an action number outside etcd's enum: nothing to do
      }
      if (resp === undefined) return {}; // a store without alarms
      // etcd 3.4's alarm answers carry no header.
      return { alarms: resp.alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) };
    });
    add('/v3/maintenance/hash', 'HashRequest', 'HashResponse', async () => {
      const h = optional(kv, 'hash');
      if (h === undefined) throw unimplemented('Hash', 'Maintenance');
      const resp = (await h()) as { header?: { revision: number }; hash: number };
      return { ...resp, header: this.header(resp.header?.revision ?? (await this.currentRevision())) };
    });
    // etcd 3.5's path; etcd 3.4's gateway routes /v3/maintenance/hash to Hash and offers no HashKV.
    add('/v3/maintenance/hashkv', 'HashKVRequest', 'HashKVResponse', async (r) => {
      const h = (kv as unknown as { hashKV?: unknown }).hashKV;
      if (typeof h !== 'function') throw unimplemented('HashKV', 'Maintenance');
      type HashKV = (rev: number) => Promise<{ header: { revision: number }; hash: number; compactRevision: number }>;
      const resp = await (h as HashKV).call(kv, int64(r.revision));
      return { header: this.header(resp.header.revision), hash: resp.hash, compactRevision: resp.compactRevision };
    });
    add('/v3/maintenance/defragment', 'DefragmentRequest', 'DefragmentResponse', async () => {
      const d = optional(kv, 'defragment');
      if (d === undefined) throw unimplemented('Defragment', 'Maintenance');
      await d();
      return {};
    });
    const cluster = this.#ident.cluster;
    if (cluster !== undefined) {
      this.#clusterTable(cluster, add);
    } else {
      this.#singleMemberTable(add);
    }
    for (const p of [
      'enable',
      'disable',
      'authenticate',
      'user/add',
      'user/get',
      'user/list',
      'user/delete',
      'user/changepw',
      'user/grant',
      'user/revoke',
      'role/add',
      'role/get',
      'role/list',
      'role/delete',
      'role/grant',
      'role/revoke',
    ]) {
      add(`/v3/auth/${p}`, 'StatusRequest', 'StatusResponse', async () => {
        throw unimplemented(authMethod(p), 'Auth');
      });
    }
    return m;
  }

  async #status(): Promise<unknown> {
    const r = await this.#kv.status();
    const cluster = this.#ident.cluster;
    // A lone member is its own leader; without raft the raft fields stay absent.
    if (cluster === undefined) return { ...r, header: this.header(r.header.revision), leader: this.#ident.memberId };
    // A raft member reports its raft node's view, read once so the fields agree with each other.
    const m = cluster.memberStatus();
    return {
      ...r,
      header: {
        clusterId: this.#ident.clusterId,
        memberId: this.#ident.memberId,
        revision: r.header.revision,
        raftTerm: m.raftTerm,
      },
      leader: BigInt(m.leader),
      raftTerm: m.raftTerm,
      raftIndex: m.raftIndex,
      raftAppliedIndex: m.raftAppliedIndex,
      isLearner: m.isLearner,
    };
  }

  /** Lease keepalive, one request of the stream. A missing lease answers TTL 0, as etcd does. */
  async keepAlive(r: Decoded): Promise<unknown> {
    try {
      return this.#top(await this.#kv.leaseKeepAlive({ ID: id(r.ID) }));
    } catch (e) {
      if (e instanceof BoltkvError && e.code === 'ERR_LEASE_NOT_FOUND') {
        return { header: this.header(await this.currentRevision()), ID: r.ID ?? 0n, TTL: 0 };
      }
      throw e;
    }
  }
}

function authMethod(p: string): string {
  const [a, b] = p.split('/') as [string, string | undefined];
  const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
  if (b === undefined) return `Auth${cap(a)}`;
  return `${cap(a)}${b === 'changepw' ? 'ChangePassword' : cap(b)}`;
}

function optional(kv: ServedKV, name: string): (() => Promise<unknown>) | undefined {
  const f = (kv as unknown as Record<string, unknown>)[name];
  return typeof f === 'function' ? () => (f as () => Promise<unknown>).call(kv) : undefined;
}

// ---- request shapes: decoded JSON → the store's request objects (bytes default to empty, as in proto3)

const EMPTY = new Uint8Array(0);

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
}

function rangeReq(r: Decoded): never {
  return {
    key: bytes(r.key),
    rangeEnd: r.rangeEnd === undefined ? undefined : bytes(r.rangeEnd),
    limit: int64(r.limit),
    revision: int64(r.revision),
    sortOrder: r.sortOrder ?? 'NONE',
    sortTarget: r.sortTarget ?? 'KEY',
    serializable: r.serializable === true,
    keysOnly: r.keysOnly === true,
    countOnly: r.countOnly === true,
    minModRevision: int64(r.minModRevision),
    maxModRevision: int64(r.maxModRevision),
    minCreateRevision: int64(r.minCreateRevision),
    maxCreateRevision: int64(r.maxCreateRevision),
  } as never;
}

function putReq(r: Decoded): never {
  return {
    key: bytes(r.key),
    value: bytes(r.value),
    lease: id(r.lease),
    prevKv: r.prevKv === true,
    ignoreValue: r.ignoreValue === true,
    ignoreLease: r.ignoreLease === true,
  } as never;
}

function delReq(r: Decoded): never {
  return {
    key: bytes(r.key),
    rangeEnd: r.rangeEnd === undefined ? undefined : bytes(r.rangeEnd),
    prevKv: r.prevKv === true,
  } as never;
}

function compareReq(c: Decoded): unknown {
  return {
    key: bytes(c.key),
    rangeEnd: c.rangeEnd === undefined ? undefined : bytes(c.rangeEnd),
    target: c.target ?? 'VERSION',
    result: c.result ?? 'EQUAL',
    version: int64(c.version),
    createRevision: int64(c.createRevision),
    modRevision: int64(c.modRevision),
    value: bytes(c.value),
    lease: id(c.lease),
  };
}

function opReq(o: Decoded): unknown {
  if (o.requestRange !== undefined) return { requestRange: rangeReq(o.requestRange as Decoded) };
  if (o.requestPut !== undefined) return { requestPut: putReq(o.requestPut as Decoded) };
  if (o.requestDeleteRange !== undefined) return { requestDeleteRange: delReq(o.requestDeleteRange as Decoded) };
  if (o.requestTxn !== undefined) return { requestTxn: txnReq(o.requestTxn as Decoded) };
  return {}; // an empty RequestOp: the store answers etcd's error for it
}

function txnReq(r: Decoded): never {
  const list = (v: unknown): Decoded[] => (Array.isArray(v) ? (v as Decoded[]) : []);
  return {
    compare: list(r.compare).map(compareReq),
    success: list(r.success).map(opReq),
    failure: list(r.failure).map(opReq),
  } as never;
}

/** etcd fills only the revision in headers of responses inside a txn, and none in a nested txn's. */
function nestedResponses(responses: readonly unknown[]): unknown[] {
  return responses.map((op) => {
    const o = op as Record<string, { header?: { revision: number }; responses?: unknown[] } & Record<string, unknown>>;
    const [kind, resp] = Object.entries(o)[0] ?? [];
    if (kind === undefined || resp === undefined) return {};
    if (kind === 'responseTxn')
      return { responseTxn: { ...resp, header: {}, responses: nestedResponses(resp.responses ?? []) } };
    return { [kind]: { ...resp, header: { revision: resp.header?.revision } } };
  });
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Member ids are 52-bit (src/replication/member-id.ts); a larger one names no member. */
function memberNumber(v: unknown): number {
  const n = typeof v === 'bigint' ? v : 0n;
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : -1;
}
