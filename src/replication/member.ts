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
import type { DB } from '../bolt/index.ts';
import { etcdSnapshot } from '../bolt/backup.ts';
import type { Readable } from 'node:stream';
import type { AlarmResponse, DefragmentResponse, HashKVResponse, Maintenance, SnapshotOptions } from '../api/maintenance.ts';
import { nodeFileSystem } from '../bolt/index.ts';
import { isBoltkvError } from '../errors.ts';
import { MvccStore } from '../mvcc/store.ts';
import type { DeleteOptions, GetOptions, KV, SetOptions } from '../api/kv.ts';
import { SERVER_VERSION } from '../api/kv-store.ts';
import { prefixEnd } from '../api/prefix.ts';
import { costPut, costTxn, LEASE_COST, SpaceQuota } from '../api/quota.ts';
import { MvccError } from '../mvcc/errors.ts';
import { header as mvccHeader } from '../mvcc/txn-context.ts';
import { leaseId } from '../mvcc/validate.ts';
import { WatchHub } from '../watch/hub.ts';
import type { WatchRequest, WatchStream, Watcher } from '../watch/types.ts';
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
import { ReadLoop } from './read-loop.ts';
import { ReceivedSnapshots, fileBytes, fileChunks, openParts } from './member-files.ts';
import { Proposals } from './proposals.ts';
import { MAX_REQUEST_BYTES, type MemberOptions, type MemberStatus } from './member-options.ts';
import { txnKind } from './txn-kind.ts';
import { MembersStore } from './members.ts';
import { memberIdFor } from './member-id.ts';
import {
  decodePayload, encodePayload, type ConfPayload, type EntryPayload, type MemberInfo, type ProposalId,
} from './proposal.ts';
import { RaftBackend } from './raft-backend.ts';
import { installSnapshot, nodeRename, } from './snapshot-install.ts';

export class Member implements KV, Maintenance, ClusterApi {
  readonly id: number;
  private readonly opts: MemberOptions;
  private readonly storage: BoltRaftStorage;
  private backend: RaftBackend;
  private store: MvccStore;
  private readonly node: RawNode;
  private readonly members: MembersStore;
  private readonly lessor: Lessor;
  private readonly proposals: Proposals;
  private ticks = 0;
  private role: StateType = 'follower';
  private leader = 0;
  private term = 0;
  private applied: number;
  private confState: ConfState;
  private readonly reads: ReadLoop;
  private loop: Promise<void> | undefined;
  private looping = false;
  private installing: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;
  private removed = false;
  private snapshotSoon = false;
  private transfers: { to: number; resolve: () => void; reject: (e: unknown) => void; deadline: number }[] = [];
  /** Answers to give once the current Ready is handled (durable when it had to be). */
  private afterApply: (() => void)[] = [];
  /** Entries were applied in memory that no commit has carried yet. */
  private unsynced = false;
  /** Tick of the last proposal publishing this member's attributes (retried after a timeout). */
  private publishTick = Number.NEGATIVE_INFINITY;
  private readonly requestTimeout: number;
  private readonly events: StoreEvents;
  /** Files received by a transport, waiting for raft to hand their snapshot over. */
  private readonly received: ReceivedSnapshots;
  private readonly hub: WatchHub;
  private readonly quota: SpaceQuota;

  private constructor(opts: MemberOptions, storage: BoltRaftStorage, backend: RaftBackend, store: MvccStore, members: MembersStore) {
    this.id = opts.id;
    this.opts = opts;
    this.storage = storage;
    this.backend = backend;
    this.store = store;
    this.members = members;
    const random = opts.random ?? Math.random;
    this.proposals = new Proposals(opts.id, Math.floor(random() * 0xffffffff));
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
    this.hub = new WatchHub(this.events, opts.watch);
    this.received = new ReceivedSnapshots(opts.path, opts.fileSystem ?? nodeFileSystem);
    this.quota = new SpaceQuota(opts.quotaBackendBytes ?? 0, () => this.memberStatus().dbSize, BigInt(opts.id));
    this.reads = new ReadLoop({ readIndex: (ctx) => this.node.readIndex(ctx), kick: () => this.kick() }, this.proposals.incarnation);
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
    this.publishAttributes();
    this.kick();
    this.flushApplied();
  }

  /** etcd's publish: puts this member's name and client URLs in the member list through the log. */
  private publishAttributes(): void {
    const { name, clientURLs } = this.opts;
    if (name === undefined && clientURLs === undefined) return;
    if (this.leader === 0 || this.ticks - this.publishTick < this.requestTimeout) return;
    const me = this.members.list().find((m) => m.id === this.id);
    if (me === undefined) return;
    const want = { id: this.id, name: name ?? me.name, clientURLs: [...(clientURLs ?? me.clientURLs)] };
    if (me.name === want.name && me.clientURLs.join('\n') === want.clientURLs.join('\n')) return;
    this.publishTick = this.ticks;
    try {
      this.node.propose(encodePayload({ id: this.proposals.nextId(), memberAttrs: want }));
    } catch {
      // the leader went away: retried on a later tick
    }
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
    return fileChunks(this.backend);
  }

  /** The same copy in one buffer (in-process transports, small files). */
  snapshotBytes(): Uint8Array {
    return fileBytes(this.backend);
  }

  /**
   * Runs the Ready loop unless it runs already. `looping` is set before the loop's first
   * synchronous step: handling a Ready may kick again (a read batch sent from a ReadState) before
   * `loop` is assigned, and a second loop would take a Ready before the first is advanced.
   */
  private kick(): void {
    if (this.looping || this.closed || this.failure !== undefined) return;
    if (!this.node.hasReady()) return;
    this.looping = true;
    this.loop = (async () => {
      try {
        while (!this.closed && this.failure === undefined && this.node.hasReady()) await this.handleReady(this.node.ready());
      } catch (err) {
        this.fail(err);
      } finally {
        this.looping = false;
        this.loop = undefined;
      }
      if (this.unsynced && this.watchersWaiting()) this.flushApplied();
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

    // etcd's mustSync: new entries, a new term or vote must be durable before anyone relies on
    // them. A Ready that only moves the commit index and applies entries already in the log need
    // not wait: its writes ride the next commit (the log replays them after a crash).
    const prev = this.storage.hardState();
    const hs = rd.hardState;
    let mustSync = rd.entries.length > 0 || rd.snapshot !== undefined || (hs !== undefined && (hs.term !== prev.term || hs.vote !== prev.vote));
    this.storage.save({ entries: rd.entries, ...(hs !== undefined ? { hardState: hs } : {}) });
    const writes = this.storage.takeWrites();
    for (const e of rd.committedEntries) if (this.applyEntry(e, writes)) mustSync = true;
    const durable = this.backend.stage(writes);
    durable.catch(() => undefined);
    if (mustSync) {
      // one commit carries the staged raft writes and everything applied since the last one
      await this.store.commit();
      await durable;
      this.unsynced = false;
    } else {
      this.unsynced = true;
    }

    if (!leaderNow) this.opts.send(rd.messages);
    this.node.advance(rd);
    const done = this.afterApply;
    this.afterApply = [];
    for (const f of done) f();
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined) this.applied = Math.max(this.applied, last.index);
    if (rd.snapshot !== undefined) this.applied = Math.max(this.applied, rd.snapshot.metadata.index);
    for (const rs of rd.readStates) this.reads.arrived(rs.requestCtx, rs.index, this.ticks + this.requestTimeout);
    this.reads.applied(this.applied);
    this.received.discardUpTo(this.applied);
    await this.maybeSnapshot();
    if (this.removed) await this.close();
  }

  /**
   * Commits applied entries that no mustSync Ready has carried yet. Runs on the tick, and at once
   * when the loop goes idle with watchers waiting (watch events are announced when durable).
   */
  private flushApplied(): void {
    if (!this.unsynced || this.looping || this.closed || this.failure !== undefined) return;
    this.unsynced = false;
    void (async () => this.store.commit())().catch((err: unknown) => this.fail(err));
  }

  private watchersWaiting(): boolean {
    const s = this.hub.stats();
    return s.synced + s.unsynced > 0;
  }

  /**
   * Hands one committed entry to the state machine, in memory: its effects ride the next commit.
   * `writes` collects raft-bucket and member-list writes for that commit. The proposer's caller is
   * answered after this Ready (afterApply). Returns true when the entry must be durable before
   * then (a conf change: membership is rare and the member list must not run ahead of the file).
   */
  private applyEntry(e: Entry, writes: RaftWrite[]): boolean {
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
        this.afterApply.push(() => this.proposals.answer(payload.id, list));
      }
      return true;
    }
    if (e.data.length === 0) return false; // a new leader's empty entry
    const p = decodePayload<EntryPayload>(e.data, `entry ${e.index}`);
    if ('memberUpdate' in p) {
      writes.push(...this.members.update(p.memberUpdate.id, { peerURLs: p.memberUpdate.peerURLs }));
      const list = this.members.list();
      this.afterApply.push(() => this.proposals.answer(p.id, list));
      return true;
    }
    if ('memberAttrs' in p) {
      writes.push(...this.members.update(p.memberAttrs.id, { name: p.memberAttrs.name, clientURLs: p.memberAttrs.clientURLs }));
      return true;
    }
    if ('keepAlive' in p) {
      const id = leaseId(p.keepAlive.ID, 'ID');
      if (this.role === 'leader') this.lessor.renew(id);
      const ttl = this.lessor.ttl(id) ?? 0;
      const header = this.header(mvccHeader(this.store.revision()));
      this.afterApply.push(() => this.proposals.answer(p.id, { header, ID: id, TTL: ttl } satisfies LeaseKeepAliveResponse));
      return false;
    }
    const r = this.store.applyNow(e.index, p.req);
    if (r === undefined) return false; // applied before a restart
    if (!('error' in r)) this.lessor.applied(p.req, r.response);
    this.afterApply.push(() => ('error' in r ? this.proposals.answerError(p.id, r.error) : this.proposals.answer(p.id, r.response)));
    return false;
  }

  private async installSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    let release!: () => void;
    this.installing = new Promise<void>((r) => (release = r));
    try {
      await this.store.close();
      await installSnapshot({
        path: this.opts.path, fs: this.opts.fileSystem ?? nodeFileSystem, rename: this.opts.rename ?? nodeRename,
        data: snap.data.length > 0 ? snap.data : { file: this.received.take(snap.metadata.index) }, metadata: snap.metadata,
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
   * place. One reception at a time.
   */
  receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    return this.received.receive(m, chunks, () => {
      this.checkUsable();
    }, (msg) => this.step(msg), (index) => index <= this.node.status().hardState.commit);
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
    await this.store.commit();
    await done;
    this.unsynced = false;
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    const e = new ReplicationError('ERR_CLOSED', `member ${this.id} stopped: ${String(err)}`, { cause: err });
    this.rejectAll(e);
  }

  private rejectAll(e: unknown): void {
    this.proposals.rejectAll(e);
    this.reads.rejectAll(e);
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

  private propose(req: ApplyRequest): Promise<ApplyResponse> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.proposals.nextId();
    const data = encodePayload({ id, req });
    if (data.length > MAX_REQUEST_BYTES) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'etcdserver: request is too large');
    return this.awaitApplied<ApplyResponse>(id, () => this.node.propose(data));
  }

  private proposeConf(cc: ConfChange, member?: MemberInfo): Promise<MemberInfo[]> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.proposals.nextId();
    const context = encodePayload(member !== undefined ? { id, member } : { id });
    return this.awaitApplied<MemberInfo[]>(id, () => this.node.proposeConfChange({ ...cc, context }));
  }

  /** Hands a proposal to raft (`send`) and resolves with its answer once it is applied here. */
  private awaitApplied<T>(id: ProposalId, send: () => void): Promise<T> {
    const p = this.proposals.wait<T>(id, this.ticks + this.requestTimeout, send);
    this.kick();
    return p;
  }

  private expireRequests(): void {
    this.proposals.expire(this.ticks);
    this.reads.expire(this.ticks, this.ticks + this.requestTimeout);
  }

  // ------------------------------------------------------------------ linearizable reads

  /** Resolves once a linearizable read may be served here (read-loop.ts). */
  private readBarrier(): Promise<void> {
    this.checkUsable();
    this.checkNotLearner();
    return this.reads.barrier(this.ticks + this.requestTimeout);
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
    this.quota.check(costPut(req));
    const r = await this.propose({ put: req });
    if (!('put' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.put, header: this.header(r.put.header) };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const r = await this.propose({ deleteRange: req });
    if (!('deleteRange' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.deleteRange, header: this.header(r.deleteRange.header) };
  }

  /** A txn that only ranges is a read (etcd's isTxnReadonly): served like a range, not logged. */
  async txn(req: TxnRequest): Promise<TxnResponse> {
    const kind = txnKind(req);
    if (kind !== 'write') {
      this.checkUsable();
      this.checkNotLearner(); // etcd 3.4's learner serves ranges only
      if (kind === 'linearizable') await this.readBarrier();
      const r = (await this.currentStore()).readTxn(req);
      return { ...r, header: this.header(r.header) };
    }
    this.quota.check(costTxn(req));
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
    this.quota.check(LEASE_COST);
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

  /**
   * Renews a lease. Expiry is the leader's to decide: the leader renews at once; a follower
   * proposes the keep-alive (etcd forwards it to the leader), which the member leading when it is
   * applied renews, and answers with the lease's granted TTL once it applied it itself.
   */
  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    this.checkUsable();
    this.checkNotLearner();
    if (this.role !== 'leader') {
      const id = this.proposals.nextId();
      const data = encodePayload({ id, keepAlive: { ID: leaseId(req.ID, 'ID') } });
      return this.awaitApplied<LeaseKeepAliveResponse>(id, () => this.node.propose(data));
    }
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
      isLearner: m.isLearner, errors: this.quota.alarms().map((a) => `memberID:${a.memberId} alarm:${a.alarm} `),
    };
  }

  /** The raised alarms (etcd's Alarm GET); NOSPACE is raised by this member's quota. */
  async alarmList(): Promise<AlarmResponse> {
    this.checkUsable();
    return { header: this.header((await this.currentStore()).status().header), alarms: this.quota.alarms() };
  }

  /** Clears the NOSPACE alarm (etcd's Alarm DEACTIVATE); returns the alarms that were raised. */
  async alarmDisarm(): Promise<AlarmResponse> {
    this.checkUsable();
    return { header: this.header((await this.currentStore()).status().header), alarms: this.quota.disarm() };
  }

  // ---- Maintenance: thin, the store and the bolt file do the work

  /** etcd's HashKV over this member's applied history. */
  async hashKV(revision = 0): Promise<HashKVResponse> {
    const store = await this.currentStore();
    const h = await store.hashKV(revision);
    return { header: this.header({ revision: h.revision }), hash: h.hash, compactRevision: h.compactRevision };
  }

  /** This member's whole file (etcd's buckets and the raft log) as etcd's Snapshot stream. */
  snapshot(options: SnapshotOptions = {}): Readable & { readonly size: number } {
    this.checkUsable();
    return etcdSnapshot(this.boltFile().begin(false), options);
  }

  /** Online defragmentation of this member's file (raft and the store keep going; writes wait for the swap). */
  async defragment(): Promise<DefragmentResponse> {
    const store = await this.currentStore();
    await this.boltFile().defragment();
    return { header: this.header(store.status().header) };
  }

  private boltFile(): DB {
    if (!(this.backend.inner instanceof BoltBackend)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'this member has no bolt file');
    return this.backend.inner.db;
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
    const pid = this.proposals.nextId();
    const data = encodePayload({ id: pid, memberUpdate: { ...m, peerURLs: [...peerURLs] } });
    return this.awaitApplied<MemberInfo[]>(pid, () => this.node.propose(data));
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
