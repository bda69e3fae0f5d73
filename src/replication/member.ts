/**
 * A replicated boltkv member: the raft core, the revision layer and one bolt file, joined by the
 * Ready loop. Per Ready, in this order:
 *   1. a snapshot from the leader, if any, replaces the bolt file (snapshot-install.ts);
 *   2. a leader sends its messages at once (its own unsynced entries only count towards commits
 *      whose answers wait for step 3's commit anyway); other roles send after step 3;
 *   3. the raft writes (log, hard state) are staged and the committed entries handed to the store:
 *      one bolt write transaction carries both, with consistent_index, and is awaited;
 *   4. advance; callers whose proposals were applied here, and reads whose index is applied, are
 *      answered.
 * The member does no timing of its own: a driver calls tick() (the simulation, or a real timer)
 * and a transport calls step(); outgoing messages go to `send`. Everything else is answered from
 * what the Ready loop produced, so the same code runs in the deterministic simulation and for real.
 */
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import type { OpenOptions, FileSystem } from '../bolt/index.ts';
import { nodeFileSystem } from '../bolt/index.ts';
import { isBoltkvError } from '../errors.ts';
import { MvccStore } from '../mvcc/store.ts';
import type { DeleteOptions, GetOptions, KV, SetOptions } from '../api/kv.ts';
import { SERVER_VERSION } from '../api/kv-store.ts';
import { prefixEnd } from '../api/prefix.ts';
import { MvccError } from '../mvcc/errors.ts';
import { leaseId } from '../mvcc/validate.ts';
import { WatchHub } from '../watch/hub.ts';
import type { WatchHubOptions, WatchRequest, WatchStream, Watcher } from '../watch/types.ts';
import { StoreEvents } from './store-events.ts';
import type { ClusterApi } from './cluster-api.ts';
import type {
  BytesLike, StatusResponse,
  ApplyRequest, ApplyResponse, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
  LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesResponse,
  LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest,
  PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
} from '../mvcc/requests.ts';
import {
  RawNode, decodeConfChange, checkLearnerPromotion, isRaftError,
  type ConfChange, type ConfState, type Entry, type Message, type Ready, type SnapshotStatus, type StateType, type Status,
} from '../raft/index.ts';
import { BoltRaftStorage, type RaftWrite } from './bolt-raft-storage.ts';
import { ReplicationError, replicationError } from './errors.ts';
import { Lessor } from './lessor.ts';
import { MembersStore } from './members.ts';
import { memberIdFor } from './member-id.ts';
import {
  decodePayload, encodePayload, idKey, type ConfPayload, type MemberInfo, type MemberUpdatePayload, type NormalPayload, type ProposalId,
} from './proposal.ts';
import { RaftBackend } from './raft-backend.ts';
import { copyToBytes, copyChunks } from './db-copy.ts';
import { installSnapshot, nodeRename, type Rename } from './snapshot-install.ts';
import { SnapshotInbox } from './snapshot-inbox.ts';

/** etcd's default --max-request-bytes (1.5 MiB). */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

export interface MemberOptions {
  id: number;
  /** The member's bolt file. */
  path: string;
  /** Where outgoing raft messages go. Snapshot messages carry empty data: see snapshotBytes(). */
  send: (msgs: Message[]) => void;
  /**
   * The cluster to bootstrap when the file holds no raft state yet (a new cluster). Omit to join
   * an existing cluster: the member then waits for the leader's snapshot.
   */
  initialCluster?: MemberInfo[];
  /** The file layer (tests inject faults) and how to rename a file over another atomically. */
  fileSystem?: FileSystem;
  rename?: Rename;
  bolt?: OpenOptions;
  electionTick?: number;
  heartbeatTick?: number;
  /** Ticks a proposal or read may wait before failing with ERR_TIMEOUT. Default 50. */
  requestTimeoutTicks?: number;
  /** Applied entries between raft snapshots (etcd --snapshot-count; default 10,000). */
  snapshotCount?: number;
  /** Entries kept behind a snapshot so slow followers catch up from the log (etcd: 5,000). */
  catchUpEntries?: number;
  /** Clock for lease expiry in ms (default Date.now). */
  now?: () => number;
  /** Randomness for election timeouts and proposal ids (default Math.random). */
  random?: () => number;
  /** Passed to the revision layer. */
  compactionBatchIntervalMs?: number;
  watch?: WatchHubOptions;
  /** etcd --initial-cluster-token: member ids added through the API derive from it and the peer URLs. */
  clusterToken?: string;
}

/** etcd's Status response, in process. */
export interface MemberStatus {
  memberId: number;
  leader: number;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  dbSize: number;
}

interface Deferred<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  deadline: number;
}

interface ReadBatch {
  ctx: string;
  waiters: Deferred<void>[];
  deadline: number;
}

function enc64(a: number, b: number): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint32(0, a >>> 0);
  v.setUint32(4, b >>> 0);
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class Member implements KV, ClusterApi {
  readonly id: number;
  private readonly opts: MemberOptions;
  private readonly storage: BoltRaftStorage;
  private backend: RaftBackend;
  private store: MvccStore;
  private readonly node: RawNode;
  private readonly members: MembersStore;
  private readonly lessor: Lessor;
  private readonly incarnation: number;
  private seq = 0;
  private ticks = 0;
  private role: StateType = 'follower';
  private leader = 0;
  private term = 0;
  private applied: number;
  private confState: ConfState;
  private readonly waiters = new Map<string, Deferred<unknown>>();
  private readQueue: Deferred<void>[] = [];
  private readInflight: ReadBatch | undefined;
  private readsAwaitingApply: { index: number; waiters: Deferred<void>[] }[] = [];
  private loop: Promise<void> | undefined;
  private installing: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;
  private removed = false;
  private snapshotSoon = false;
  private transfers: { to: number; resolve: () => void; reject: (e: unknown) => void; deadline: number }[] = [];
  /** Answers to give once the current Ready's transaction is durable. */
  private afterCommit: (() => void)[] = [];
  private readonly requestTimeout: number;
  private readonly events: StoreEvents;
  /** Files received by a transport, waiting for raft to hand their snapshot over. */
  private readonly inbox: SnapshotInbox;
  private receiving: Promise<void> = Promise.resolve();
  private readonly hub: WatchHub;

  private constructor(opts: MemberOptions, storage: BoltRaftStorage, backend: RaftBackend, store: MvccStore, members: MembersStore) {
    this.id = opts.id;
    this.opts = opts;
    this.storage = storage;
    this.backend = backend;
    this.store = store;
    this.members = members;
    const random = opts.random ?? Math.random;
    this.incarnation = Math.floor(random() * 0xffffffff);
    this.requestTimeout = opts.requestTimeoutTicks ?? 50;
    this.applied = storage.snapshotIndex();
    this.confState = storage.initialState().confState;
    this.node = new RawNode({
      id: opts.id, storage, electionTick: opts.electionTick ?? 10, heartbeatTick: opts.heartbeatTick ?? 1,
      applied: this.applied, preVote: true, checkQuorum: true, random,
    });
    this.term = storage.hardState().term;
    this.lessor = new Lessor(opts.now ?? Date.now);
    this.lessor.restore(backend);
    this.events = new StoreEvents(store);
    this.inbox = new SnapshotInbox(opts.fileSystem ?? nodeFileSystem, opts.path);
    this.hub = new WatchHub(this.events, opts.watch);
  }

  /** Opens (or creates) the member's file and starts its raft node. */
  static async open(opts: MemberOptions): Promise<Member> {
    if (!Number.isSafeInteger(opts.id) || opts.id <= 0) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'member id must be a positive integer');
    const { backend, storage, store, members } = await openParts(opts);
    if (storage.lastIndex() === 0 && opts.initialCluster !== undefined) {
      const voters = opts.initialCluster.filter((m) => !m.isLearner).map((m) => m.id);
      const learners = opts.initialCluster.filter((m) => m.isLearner).map((m) => m.id);
      if (!voters.includes(opts.id) && !learners.includes(opts.id)) {
        await store.close();
        throw new ReplicationError('ERR_INVALID_ARGUMENT', `member ${opts.id} is not in the initial cluster`);
      }
      // Every initial member starts from the same snapshot at index 1 listing the cluster.
      storage.save({ entries: [], hardState: { term: 1, vote: 0, commit: 1 }, snapshot: { data: new Uint8Array(0), metadata: { index: 1, term: 1, confState: { voters, learners } } } });
      const writes = storage.takeWrites();
      for (const m of opts.initialCluster) writes.push(...members.put(m));
      const done = backend.stage(writes);
      await backend.flush();
      await done;
    }
    return new Member(opts, storage, backend, store, members);
  }

  // ------------------------------------------------------------------ driving

  /** One tick of logical time: elections, heartbeats, request deadlines, lease expiry. */
  tick(): void {
    if (this.closed || this.failure !== undefined) return;
    this.ticks++;
    this.node.tick();
    this.expireRequests();
    this.settleTransfers();
    if (this.role === 'leader') this.revokeExpiredLeases();
    this.kick();
  }

  /** A message from a peer. Malformed or stale messages are dropped. */
  step(m: Message): void {
    if (this.closed || this.failure !== undefined) return;
    try {
      this.node.step(m);
    } catch (err) {
      if (isRaftError(err) && err.code !== 'ERR_RAFT_PANIC') return;
      throw err;
    }
    this.kick();
  }

  reportUnreachable(id: number): void {
    if (this.closed || this.failure !== undefined) return;
    this.node.reportUnreachable(id);
    this.kick();
  }

  reportSnapshot(id: number, status: SnapshotStatus): void {
    if (this.closed || this.failure !== undefined) return;
    this.node.reportSnapshot(id, status);
    this.kick();
  }

  /** Resolves once the Ready loop has nothing left to do (the simulation settles on it). */
  async idle(): Promise<void> {
    while (this.loop !== undefined) await this.loop;
  }

  /** True while the Ready loop runs (a commit is in flight). */
  get busy(): boolean {
    return this.loop !== undefined;
  }

  /** Why the member stopped, if it failed (a commit failed: restart it from its file). */
  get failed(): unknown {
    return this.failure;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True once this member applied its own removal. */
  get isRemoved(): boolean {
    return this.removed;
  }

  /** The consistent copy of this member's bolt file a lagging peer is sent, in chunks. */
  snapshotChunks(): Generator<Uint8Array, void, undefined> {
    const tx = this.backend.inner instanceof BoltBackend ? this.backend.inner.db.begin(false) : undefined;
    if (tx === undefined) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'snapshots need a bolt backend');
    return (function* () {
      try {
        yield* copyChunks(tx);
      } finally {
        tx.rollback();
      }
    })();
  }

  /** The same copy in one buffer (in-process transports, small files). */
  snapshotBytes(): Uint8Array {
    const db = (this.backend.inner as BoltBackend).db;
    const tx = db.begin(false);
    try {
      return copyToBytes(tx);
    } finally {
      tx.rollback();
    }
  }

  private kick(): void {
    if (this.loop !== undefined || this.closed || this.failure !== undefined) return;
    if (!this.node.hasReady()) return;
    this.loop = (async () => {
      try {
        while (!this.closed && this.failure === undefined && this.node.hasReady()) await this.handleReady(this.node.ready());
      } catch (err) {
        this.fail(err);
      } finally {
        this.loop = undefined;
      }
    })();
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) {
      const wasLeader = this.role === 'leader';
      this.role = rd.softState.raftState;
      this.leader = rd.softState.lead;
      if (this.role === 'leader' && !wasLeader) this.lessor.promote();
      if (this.role !== 'leader' && wasLeader) this.lessor.demote();
      this.settleTransfers();
    }
    if (rd.hardState !== undefined) this.term = rd.hardState.term;
    if (rd.snapshot !== undefined) await this.installSnapshot(rd);
    const leaderNow = this.role === 'leader';
    if (leaderNow) this.opts.send(rd.messages);

    this.storage.save({ entries: rd.entries, ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}) });
    const writes = this.storage.takeWrites();
    const applies: Promise<unknown>[] = [];
    for (const e of rd.committedEntries) applies.push(this.applyEntry(e, writes));
    const durable = this.backend.stage(writes);
    durable.catch(() => undefined);
    // The store commits what apply queued; raft-only Readies commit through flush.
    await Promise.allSettled(applies);
    await this.backend.flush();
    await durable;

    if (!leaderNow) this.opts.send(rd.messages);
    this.node.advance(rd);
    const done = this.afterCommit;
    this.afterCommit = [];
    for (const f of done) f();
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined) this.applied = Math.max(this.applied, last.index);
    if (rd.snapshot !== undefined) this.applied = Math.max(this.applied, rd.snapshot.metadata.index);
    for (const rs of rd.readStates) this.readStateArrived(hex(rs.requestCtx), rs.index);
    this.serveReads();
    this.inbox.discardUpTo(this.applied);
    await this.maybeSnapshot();
    if (this.removed) await this.close();
  }

  /**
   * Hands one committed entry to the state machine. `writes` collects raft-bucket and member-list
   * writes that must land in the same transaction. Returns the apply promise (answers its caller).
   */
  private applyEntry(e: Entry, writes: RaftWrite[]): Promise<unknown> {
    if (e.type === 'confChange') {
      const cc: ConfChange = decodeConfChange(e.data);
      let payload: ConfPayload | undefined;
      if (cc.context !== undefined && cc.context.length > 0) payload = decodePayload<ConfPayload>(cc.context, `conf change ${e.index}`);
      const known = this.confState.voters.includes(cc.nodeId) || this.confState.learners.includes(cc.nodeId);
      this.confState = this.node.applyConfChange(cc);
      // A joining member refuses snapshots that predate it: have one that lists it ready at once.
      if (!known && cc.type !== 'removeNode') this.snapshotSoon = true;
      writes.push(...this.members.applyConfChange(cc, payload?.member));
      if (cc.type === 'removeNode' && cc.nodeId === this.id) this.removed = true;
      if (payload !== undefined) {
        const list = this.members.list();
        this.afterCommit.push(() => this.answer(payload.id, list));
      }
      return Promise.resolve();
    }
    if (e.data.length === 0) return Promise.resolve(); // a new leader's empty entry
    const p = decodePayload<NormalPayload | MemberUpdatePayload>(e.data, `entry ${e.index}`);
    if ('memberUpdate' in p) {
      writes.push(...this.members.put(p.memberUpdate));
      const list = this.members.list();
      this.afterCommit.push(() => this.answer(p.id, list));
      return Promise.resolve();
    }
    const pr = this.store.apply(e.index, p.req).then((resp) => {
      if (resp !== undefined) this.lessor.applied(p.req, resp);
      return resp;
    });
    const key = idKey(p.id);
    const w = p.id.m === this.id && p.id.i === this.incarnation ? this.waiters.get(key) : undefined;
    if (w !== undefined) {
      this.waiters.delete(key);
      pr.then((v) => w.resolve(v), (err: unknown) => w.reject(err));
    }
    pr.catch(() => undefined);
    return pr;
  }

  private answer(id: ProposalId, value: unknown): void {
    if (id.m !== this.id || id.i !== this.incarnation) return;
    const key = idKey(id);
    const w = this.waiters.get(key);
    if (w === undefined) return;
    this.waiters.delete(key);
    w.resolve(value);
  }

  private async installSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    let release!: () => void;
    this.installing = new Promise<void>((r) => (release = r));
    try {
      await this.store.close();
      await installSnapshot({
        path: this.opts.path, fs: this.opts.fileSystem ?? nodeFileSystem, rename: this.opts.rename ?? nodeRename,
        data: snap.data.length > 0 ? snap.data : { file: this.inbox.take(snap.metadata.index) }, metadata: snap.metadata,
        hardState: rd.hardState ?? { ...this.storage.hardState(), commit: Math.max(this.storage.hardState().commit, snap.metadata.index) },
      });
      const parts = await openParts(this.opts, this.storage);
      this.backend = parts.backend;
      this.store = parts.store;
      this.members.reload(parts.members);
      this.events.attach(this.store);
      this.lessor.restore(this.backend);
      if (this.role === 'leader') this.lessor.promote();
      this.confState = snap.metadata.confState;
    } finally {
      this.installing = undefined;
      release();
    }
  }

  /**
   * For network transports: stores the leader's file streamed in chunks (never whole in memory)
   * beside the member's file, synced, then steps the snap message, whose install renames it into
   * place. One reception at a time; one of a snapshot raft already has is not written at all.
   */
  receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const run = async (): Promise<void> => {
      this.checkUsable();
      const index = m.snapshot?.metadata.index ?? 0;
      if (m.type !== 'snap' || index === 0) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'not a snapshot message');
      if (index <= this.node.status().hardState.commit) return;
      await this.inbox.receive(index, chunks);
      this.step(m);
    };
    const p = this.receiving.then(run, run);
    this.receiving = p.catch(() => undefined);
    return p;
  }

  /** etcd's snapshot-count policy: snapshot the applied state, keep catch-up entries behind it. */
  private async maybeSnapshot(): Promise<void> {
    const count = this.opts.snapshotCount ?? 10_000;
    const due = this.applied - this.storage.snapshotIndex() >= count || (this.snapshotSoon && this.applied > this.storage.snapshotIndex());
    if (!due) return;
    this.snapshotSoon = false;
    this.storage.createSnapshot(this.applied, this.confState);
    const keep = this.opts.catchUpEntries ?? 5_000;
    const compactTo = this.applied - keep;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
    const done = this.backend.stage(this.storage.takeWrites());
    done.catch(() => undefined);
    await this.backend.flush();
    await done;
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    const e = new ReplicationError('ERR_CLOSED', `member ${this.id} stopped: ${String(err)}`, { cause: err });
    this.rejectAll(e);
  }

  private rejectAll(e: unknown): void {
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
    for (const w of this.readQueue) w.reject(e);
    this.readQueue = [];
    if (this.readInflight) for (const w of this.readInflight.waiters) w.reject(e);
    this.readInflight = undefined;
    for (const b of this.readsAwaitingApply) for (const w of b.waiters) w.reject(e);
    this.readsAwaitingApply = [];
    for (const t of this.transfers) t.reject(e);
    this.transfers = [];
  }

  // ------------------------------------------------------------------ proposals

  private checkUsable(): void {
    if (this.failure !== undefined) throw new ReplicationError('ERR_CLOSED', `member ${this.id} failed: ${String(this.failure)}`);
    if (this.closed) throw new ReplicationError('ERR_CLOSED', `member ${this.id} is closed`);
  }

  get isLearner(): boolean {
    return this.confState.learners.includes(this.id);
  }

  private checkNotLearner(): void {
    if (this.isLearner) throw replicationError('ERR_LEARNER_NOT_SUPPORTED');
  }

  private nextId(): ProposalId {
    return { m: this.id, i: this.incarnation, s: ++this.seq };
  }

  private propose(req: ApplyRequest): Promise<ApplyResponse> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.nextId();
    const data = encodePayload({ id, req });
    if (data.length > MAX_REQUEST_BYTES) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'etcdserver: request is too large');
    return this.awaitApplied<ApplyResponse>(id, () => this.node.propose(data));
  }

  private proposeConf(cc: ConfChange, member?: MemberInfo): Promise<MemberInfo[]> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.nextId();
    const context = encodePayload(member !== undefined ? { id, member } : { id });
    return this.awaitApplied<MemberInfo[]>(id, () => this.node.proposeConfChange({ ...cc, context }));
  }

  /** Registers a waiter for proposal `id`, hands it to raft, and resolves when it is applied. */
  private awaitApplied<T>(id: Parameters<typeof idKey>[0], send: () => void): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      this.waiters.set(idKey(id), { resolve: resolve as (v: unknown) => void, reject, deadline: this.ticks + this.requestTimeout });
    });
    try {
      send();
    } catch (err) {
      this.waiters.delete(idKey(id));
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED')) throw replicationError('ERR_NO_LEADER');
      throw err;
    }
    this.kick();
    return p;
  }

  private expireRequests(): void {
    const timeout = replicationError('ERR_TIMEOUT');
    for (const [k, w] of this.waiters) {
      if (w.deadline <= this.ticks) {
        this.waiters.delete(k);
        w.reject(timeout);
      }
    }
    const b = this.readInflight;
    if (b !== undefined && b.deadline <= this.ticks) {
      this.readInflight = undefined;
      for (const w of b.waiters) w.reject(timeout);
      this.sendReadBatch();
    }
    for (const a of this.readsAwaitingApply) {
      const expired = a.waiters.filter((w) => w.deadline <= this.ticks);
      if (expired.length === 0) continue;
      a.waiters = a.waiters.filter((w) => w.deadline > this.ticks);
      for (const w of expired) w.reject(timeout);
    }
    this.readsAwaitingApply = this.readsAwaitingApply.filter((a) => a.waiters.length > 0);
  }

  // ------------------------------------------------------------------ linearizable reads

  /**
   * Resolves once a linearizable read may be served here: the leader confirmed its commit index
   * with a quorum and this member applied up to it. Requests are batched: one ReadIndex round is in
   * flight at a time and serves every read that arrived before it was sent (etcd's read loop).
   */
  private readBarrier(): Promise<void> {
    this.checkUsable();
    this.checkNotLearner();
    const p = new Promise<void>((resolve, reject) => this.readQueue.push({ resolve, reject, deadline: this.ticks + this.requestTimeout }));
    if (this.readInflight === undefined) this.sendReadBatch();
    return p;
  }

  private sendReadBatch(): void {
    if (this.readInflight !== undefined || this.readQueue.length === 0) return;
    const waiters = this.readQueue;
    this.readQueue = [];
    const ctx = enc64(this.incarnation, ++this.seq);
    try {
      this.node.readIndex(ctx);
    } catch (err) {
      const e = isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED') ? replicationError('ERR_NO_LEADER') : err;
      for (const w of waiters) w.reject(e);
      return;
    }
    this.readInflight = { ctx: hex(ctx), waiters, deadline: this.ticks + this.requestTimeout };
    this.kick();
  }

  private readStateArrived(ctx: string, index: number): void {
    const b = this.readInflight;
    if (b === undefined || b.ctx !== ctx) return;
    this.readInflight = undefined;
    this.readsAwaitingApply.push({ index, waiters: b.waiters });
    this.sendReadBatch();
  }

  private serveReads(): void {
    const ready = this.readsAwaitingApply.filter((a) => a.index <= this.applied);
    if (ready.length === 0) return;
    this.readsAwaitingApply = this.readsAwaitingApply.filter((a) => a.index > this.applied);
    for (const a of ready) for (const w of a.waiters) w.resolve();
  }

  private async currentStore(): Promise<MvccStore> {
    while (this.installing !== undefined) await this.installing;
    this.checkUsable();
    return this.store;
  }

  private header(h: ResponseHeader): ResponseHeader {
    return { ...h, memberId: BigInt(this.id), raftTerm: this.term };
  }

  // ------------------------------------------------------------------ KV / Lease API

  async range(req: RangeRequest): Promise<RangeResponse> {
    this.checkUsable();
    if (req.serializable !== true) await this.readBarrier();
    const store = await this.currentStore();
    const r = store.range(req);
    return { ...r, header: this.header(r.header) };
  }

  async put(req: PutRequest): Promise<PutResponse> {
    const r = await this.propose({ put: req });
    if (!('put' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.put, header: this.header(r.put.header) };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const r = await this.propose({ deleteRange: req });
    if (!('deleteRange' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.deleteRange, header: this.header(r.deleteRange.header) };
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    const r = await this.propose({ txn: req });
    if (!('txn' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.txn, header: this.header(r.txn.header) };
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const physical = req.physical === true;
    const r = await this.propose({ compaction: { revision: req.revision } });
    if (!('compaction' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    if (physical) await (await this.currentStore()).compactionDone();
    return { header: this.header(r.compaction.header) };
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    // etcd picks the id before proposing, so every member grants the same lease
    const given = leaseId(req.ID, 'ID');
    const ID = given !== 0n ? given : this.lessor.newId(this.opts.random ?? Math.random);
    const r = await this.propose({ leaseGrant: { ...req, ID } });
    if (!('leaseGrant' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.leaseGrant, header: this.header(r.leaseGrant.header) };
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    const r = await this.propose({ leaseRevoke: req });
    if (!('leaseRevoke' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { header: this.header(r.leaseRevoke.header) };
  }

  /** Renews a lease. Expiry is the leader's to decide, so only the leader accepts keep-alives. */
  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    this.checkUsable();
    this.checkNotLearner();
    if (this.role !== 'leader') throw replicationError('ERR_NOT_LEADER');
    const store = await this.currentStore();
    const r = await store.leaseKeepAlive(req);
    this.lessor.renew(leaseId(req.ID, 'ID'));
    return { ...r, header: this.header(r.header) };
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    await this.readBarrier();
    const store = await this.currentStore();
    const r = await store.leaseTimeToLive(req);
    const left = this.role === 'leader' ? this.lessor.remainingSeconds(leaseId(req.ID, 'ID')) : undefined;
    return { ...r, ...(left !== undefined && r.TTL >= 0 ? { TTL: left } : {}), header: this.header(r.header) };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    await this.readBarrier();
    const store = await this.currentStore();
    const r = await store.leaseLeases();
    return { ...r, header: this.header(r.header) };
  }

  private revokeExpiredLeases(): void {
    for (const id of this.lessor.expired(this.ticks, this.requestTimeout)) {
      try {
        this.propose({ leaseRevoke: { ID: id } }).catch(() => undefined);
      } catch {
        // no leader any more: the next leader decides
      }
    }
  }

  /** Watches this member's applied revisions (etcd serves watches from the member's own store); not on a learner. */
  watch(req: WatchRequest): Watcher {
    this.checkUsable();
    this.checkNotLearner(); // etcd 3.4 serves learners only serializable ranges and status
    return this.hub.watch(req);
  }

  watchStream(): WatchStream {
    this.checkUsable();
    this.checkNotLearner();
    return this.hub.stream();
  }

  async get(key: BytesLike, opts: GetOptions = {}): Promise<RangeResponse> {
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = opts;
    return this.range({ ...rest, key, rangeEnd: rangeEndFor(key, opts) });
  }

  async set(key: BytesLike, value: BytesLike, opts: SetOptions = {}): Promise<PutResponse> {
    return this.put({ ...opts, key, value });
  }

  async delete(key: BytesLike, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = opts;
    return this.deleteRange({ ...rest, key, rangeEnd: rangeEndFor(key, opts) });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ------------------------------------------------------------------ cluster

  /** This member's raft position (etcd's Status fields), synchronously. */
  memberStatus(): MemberStatus {
    const st = this.node.status();
    const db = this.backend.inner instanceof BoltBackend ? this.backend.inner.db : undefined;
    return {
      memberId: this.id, leader: st.softState.lead, raftTerm: st.hardState.term, raftIndex: st.lastIndex,
      raftAppliedIndex: this.applied, isLearner: this.isLearner, dbSize: db !== undefined && !db.closed ? db.stats().pgid * db.pageSize : 0,
    };
  }

  /** etcd's Maintenance.Status for this member. */
  async status(): Promise<StatusResponse> {
    this.checkUsable();
    const store = await this.currentStore();
    const s = store.status();
    const m = this.memberStatus();
    return {
      header: this.header(s.header), version: SERVER_VERSION, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse,
      leader: BigInt(m.leader), raftIndex: m.raftIndex, raftTerm: m.raftTerm, raftAppliedIndex: m.raftAppliedIndex,
      isLearner: m.isLearner, errors: [],
    };
  }

  raftStatus(): Status {
    return this.node.status();
  }

  /** The store's consistent index: the last log index whose effects are durable here. */
  consistentIndex(): number {
    return this.store.consistentIndex();
  }

  memberList(): MemberInfo[] {
    return this.members.list();
  }

  /** etcd's MemberAdd: a new voter or learner; start it afterwards with the returned id. */
  async memberAdd(m: { peerURLs: string[]; isLearner?: boolean; name?: string; id?: number }): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    this.checkUsable();
    const list = this.members.list();
    const urls = new Set(list.flatMap((x) => x.peerURLs));
    if (m.peerURLs.some((u) => urls.has(u))) throw new ReplicationError('ERR_MEMBER_EXISTS', 'etcdserver: Peer URLs already exists');
    const id = m.id ?? memberIdFor(m.peerURLs, this.opts.clusterToken);
    if (list.some((x) => x.id === id) || this.members.wasRemoved(id)) throw replicationError('ERR_MEMBER_EXISTS');
    const info: MemberInfo = { id, name: m.name ?? '', peerURLs: [...m.peerURLs], clientURLs: [], isLearner: m.isLearner === true };
    const members = await this.proposeConf({ type: info.isLearner ? 'addLearnerNode' : 'addNode', nodeId: id }, info);
    return { member: info, members };
  }

  async memberRemove(id: number): Promise<MemberInfo[]> {
    this.checkUsable();
    if (!this.members.list().some((x) => x.id === id)) throw replicationError('ERR_MEMBER_NOT_FOUND');
    return this.proposeConf({ type: 'removeNode', nodeId: id });
  }

  /**
   * etcd's MemberPromote: only on the leader (others answer ERR_NOT_LEADER), only a learner, and
   * only one whose log is within 90% of the leader's.
   */
  async memberPromote(id: number): Promise<MemberInfo[]> {
    this.checkUsable();
    const m = this.members.list().find((x) => x.id === id);
    if (m === undefined) throw replicationError('ERR_MEMBER_NOT_FOUND');
    if (!m.isLearner) throw replicationError('ERR_MEMBER_NOT_LEARNER');
    const verdict = checkLearnerPromotion(this.node.status(), id);
    if (!verdict.ok) {
      if (verdict.reason === 'notLeader') throw replicationError('ERR_NOT_LEADER');
      if (verdict.reason === 'lagging') throw replicationError('ERR_LEARNER_NOT_READY', `match ${verdict.learnerMatch} of ${verdict.leaderMatch}`);
      if (verdict.reason === 'notLearner') throw replicationError('ERR_MEMBER_NOT_LEARNER');
      throw replicationError('ERR_MEMBER_NOT_FOUND');
    }
    return this.proposeConf({ type: 'addNode', nodeId: id }, { ...m, isLearner: false });
  }

  /** etcd's MemberUpdate: new peer URLs for a member, replicated as a log entry. */
  async memberUpdate(id: number, peerURLs: string[]): Promise<MemberInfo[]> {
    this.checkUsable();
    this.checkNotLearner();
    const m = this.members.list().find((x) => x.id === id);
    if (m === undefined) throw replicationError('ERR_MEMBER_NOT_FOUND');
    const other = this.members.list().filter((x) => x.id !== id).flatMap((x) => x.peerURLs);
    if (peerURLs.some((u) => other.includes(u))) throw new ReplicationError('ERR_MEMBER_EXISTS', 'etcdserver: Peer URLs already exists');
    const pid = this.nextId();
    const p = new Promise<MemberInfo[]>((resolve, reject) => {
      this.waiters.set(idKey(pid), { resolve: resolve as (v: unknown) => void, reject, deadline: this.ticks + this.requestTimeout });
    });
    try {
      this.node.propose(encodePayload({ id: pid, memberUpdate: { ...m, peerURLs: [...peerURLs] } }));
    } catch (err) {
      this.waiters.delete(idKey(pid));
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED')) throw replicationError('ERR_NO_LEADER');
      throw err;
    }
    this.kick();
    return p;
  }

  /** Hands leadership to `id` (etcd's MoveLeader); resolves once it leads or rejects on timeout. */
  async transferLeadership(id: number): Promise<void> {
    this.checkUsable();
    if (this.role !== 'leader') throw replicationError('ERR_NOT_LEADER');
    if (!this.confState.voters.includes(id)) throw replicationError('ERR_MEMBER_NOT_FOUND', 'transferee must be a voter');
    this.node.transferLeader(id);
    this.kick();
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({ to: id, resolve, reject, deadline: this.ticks + this.requestTimeout });
    });
  }

  /** Settles leader transfers: done once the transferee leads, failed at their deadline. */
  private settleTransfers(): void {
    if (this.transfers.length === 0) return;
    const keep: typeof this.transfers = [];
    for (const t of this.transfers) {
      if (this.leader === t.to) t.resolve();
      else if (this.ticks >= t.deadline) t.reject(replicationError('ERR_TIMEOUT'));
      else keep.push(t);
    }
    this.transfers = keep;
  }

  /** Stops the member: pending callers get ERR_CLOSED, queued commits finish, the file closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.close();
    this.rejectAll(new ReplicationError('ERR_CLOSED', `member ${this.id} is closed`));
    if (this.loop !== undefined && !this.removed) await this.loop.catch(() => undefined);
    while (this.installing !== undefined) await this.installing;
    try {
      await this.store.close();
    } catch (err) {
      if (!isBoltkvError(err)) throw err;
    }
  }
}

function rangeEndFor(key: BytesLike, o: { prefix?: boolean; fromKey?: boolean; rangeEnd?: BytesLike }): BytesLike | undefined {
  const set = (['prefix', 'fromKey', 'rangeEnd'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
  if (set.length > 1) throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${set.join(' and ')} exclude each other`);
  if (o.prefix === true) return prefixEnd(key);
  if (o.fromKey === true) return new Uint8Array([0]);
  return o.rangeEnd;
}

async function openParts(opts: MemberOptions, reuse?: BoltRaftStorage): Promise<{ backend: RaftBackend; storage: BoltRaftStorage; store: MvccStore; members: MembersStore }> {
  const bolt = BoltBackend.open(opts.path, { ...opts.bolt, fileSystem: opts.fileSystem ?? opts.bolt?.fileSystem ?? nodeFileSystem });
  const backend = new RaftBackend(bolt);
  try {
    const storage = backend.view((r) => (reuse !== undefined ? reuse.reload(r) : BoltRaftStorage.load(r)));
    const members = backend.view((r) => MembersStore.load(r));
    const store = MvccStore.open({
      backend, autoExpireLeases: false, leaseCheckIntervalMs: 0,
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.compactionBatchIntervalMs !== undefined ? { compactionBatchIntervalMs: opts.compactionBatchIntervalMs } : {}),
    });
    return { backend, storage, store, members };
  } catch (err) {
    bolt.close();
    throw err;
  }
}
