import { nodeFileSystem } from '../bolt/index.ts';
import { isBoltkvError } from '../errors.ts';
import { MvccStore } from '../mvcc/store.ts';
import { SpaceQuota, noSpace } from '../api/quota.ts';
import { AlarmStore, addsData, corruptCluster, refusedWhenCorrupt } from './alarms.ts';
import { header as mvccHeader } from '../mvcc/txn-context.ts';
import { leaseId } from '../mvcc/validate.ts';
import { WatchHub } from '../watch/hub.ts';
import { StoreEvents } from './store-events.ts';
import type { ApplyRequest, ApplyResponse, LeaseKeepAliveResponse, ResponseHeader } from '../mvcc/requests.ts';
import {
  RawNode,
  decodeConfChange,
  isRaftError,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
  type SnapshotStatus,
  type StateType,
} from '../raft/index.ts';
import { BoltRaftStorage, type RaftWrite } from './bolt-raft-storage.ts';
import { ReplicationError, replicationError } from './errors.ts';
import { Lessor } from './lessor.ts';
import { ReadLoop } from './read-loop.ts';
import { ReceivedSnapshots, fileBytes, fileChunks, openParts } from './member-files.ts';
import { Proposals } from './proposals.ts';
import { MAX_REQUEST_BYTES, type MemberOptions, type MemberStatus } from './member-options.ts';
import { MembersStore } from './members.ts';
import {
  decodePayload,
  encodePayload,
  type ConfPayload,
  type EntryPayload,
  type MemberInfo,
  type ProposalId,
} from './proposal.ts';
import { RaftBackend } from './raft-backend.ts';
import { installSnapshot, nodeRename } from './snapshot-install.ts';
import { mark, tracing } from './trace.ts';

/** The Ready loop, apply and proposals; the API layers (member-kv.ts, member-cluster.ts, member-maintenance.ts) build on it. */
export abstract class MemberCore {
  readonly id: number;
  protected readonly opts: MemberOptions;
  protected readonly storage: BoltRaftStorage;
  protected backend: RaftBackend;
  protected store: MvccStore;
  protected readonly node: RawNode;
  protected readonly members: MembersStore;
  protected readonly lessor: Lessor;
  protected readonly proposals: Proposals;
  protected ticks = 0;
  protected role: StateType = 'follower';
  protected leader = 0;
  protected term = 0;
  protected applied: number;
  protected confState: ConfState;
  protected readonly reads: ReadLoop;
  protected loop: Promise<void> | undefined;
  protected looping = false;
  protected installing: Promise<void> | undefined;
  protected failure: unknown;
  protected closed = false;
  protected removed = false;
  protected snapshotSoon = false;
  protected transfers: { to: number; resolve: () => void; reject: (e: unknown) => void; deadline: number }[] = [];
  /** Answers to give once the current Ready is handled (durable when it had to be). */
  protected afterApply: (() => void)[] = [];
  /** Entries were applied in memory that no commit has carried yet. */
  protected unsynced = false;
  /** A Ready's commit ran since the last tick: writes are flowing and will carry the applies. */
  protected committedSinceTick = false;
  /** A tick asked for a flush while the Ready loop ran. */
  protected flushWanted = false;
  /** Tick of the last proposal publishing this member's attributes (retried after a timeout). */
  protected publishTick = Number.NEGATIVE_INFINITY;
  protected readonly requestTimeout: number;
  protected readonly events: StoreEvents;
  /** Files received by a transport, waiting for raft to hand their snapshot over. */
  protected readonly received: ReceivedSnapshots;
  protected readonly hub: WatchHub;
  protected readonly quota: SpaceQuota;
  /** The cluster's raised alarms, as applied from the log (alarms.ts). */
  protected readonly alarms: AlarmStore;

  protected constructor(
    opts: MemberOptions,
    storage: BoltRaftStorage,
    backend: RaftBackend,
    store: MvccStore,
    members: MembersStore,
  ) {
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
      id: opts.id,
      storage,
      electionTick: opts.electionTick ?? 10,
      heartbeatTick: opts.heartbeatTick ?? 1,
      applied: this.applied,
      preVote: true,
      checkQuorum: true,
      random,
    });
    this.term = storage.hardState().term;
    this.lessor = new Lessor(opts.now ?? Date.now);
    this.lessor.restore(backend);
    this.events = new StoreEvents(store);
    this.hub = new WatchHub(this.events, opts.watch);
    this.received = new ReceivedSnapshots(opts.path, opts.fileSystem ?? nodeFileSystem);
    this.alarms = backend.view((r) => AlarmStore.load(r));
    this.quota = new SpaceQuota(opts.quotaBackendBytes ?? 0, () => this.memberStatus().dbSize);
    this.reads = new ReadLoop(
      { readIndex: (ctx) => this.node.readIndex(ctx), kick: () => this.kick() },
      this.proposals.incarnation,
    );
  }

  /** etcd's publish: proposes this member's name and client URLs once a leader is known (member-cluster.ts). */
  protected abstract publishAttributes(): void;
  /** On the leader: proposes a revoke for each expired lease (member-kv.ts). */
  protected abstract revokeExpiredLeases(): void;
  /** This member's raft position and file size (member-maintenance.ts). */
  abstract memberStatus(): MemberStatus;

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
    // While Readies keep committing, the next one carries what was applied since: a tick commits
    // only once they stop (applies then reach the disk within two ticks), not once per tick.
    if (!this.committedSinceTick) this.flushApplied();
    this.committedSinceTick = false;
  }

  /** A message from a peer. Malformed or stale messages are dropped. */
  step(m: Message): void {
    if (this.closed || this.failure !== undefined) return;
    if (tracing) mark('step', `${m.type}<${m.from} i=${m.index} n=${m.entries?.length ?? 0} c=${m.commit}`);
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
  protected kick(): void {
    if (this.looping || this.closed || this.failure !== undefined) return;
    if (!this.node.hasReady()) return;
    this.looping = true;
    this.loop = (async () => {
      try {
        while (!this.closed && this.failure === undefined && this.node.hasReady())
          await this.handleReady(this.node.ready());
      } catch (err) {
        this.fail(err);
      } finally {
        this.looping = false;
        this.loop = undefined;
      }
      if (this.unsynced && (this.flushWanted || this.watchersWaiting())) this.flushApplied();
    })();
  }

  protected async handleReady(rd: Ready): Promise<void> {
    if (tracing)
      mark(
        'ready',
        `e=${rd.entries.map((e) => e.index).join(',')} c=${rd.committedEntries.map((e) => e.index).join(',')} m=${rd.messages.map((m) => `${m.type}>${m.to}`).join(',')} hs=${rd.hardState?.commit ?? ''}`,
      );
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
    let mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      (hs !== undefined && (hs.term !== prev.term || hs.vote !== prev.vote));
    this.storage.save({ entries: rd.entries, ...(hs !== undefined ? { hardState: hs } : {}) });
    const writes = this.storage.takeWrites();
    for (const e of rd.committedEntries) if (this.applyEntry(e, writes)) mustSync = true;
    // nothing staged for a Ready without writes: it would wait, unbounded, for the next commit
    const durable = writes.length > 0 ? this.backend.stage(writes) : Promise.resolve();
    durable.catch(() => undefined);
    if (mustSync) {
      // one commit carries the staged raft writes and everything applied since the last one
      if (tracing) mark('commit-start');
      await this.store.commit();
      if (tracing) mark('store-committed');
      await durable;
      if (tracing) mark('commit-durable');
      this.unsynced = false;
      this.flushWanted = false;
      this.committedSinceTick = true;
    } else if (writes.length > 0 || rd.committedEntries.length > 0) {
      // a Ready with nothing to write (a heartbeat and its answer) leaves nothing for a commit
      this.unsynced = true;
    }

    if (!leaderNow) this.opts.send(rd.messages);
    this.node.advance(rd);
    const done = this.afterApply;
    this.afterApply = [];
    for (const f of done) f();
    if (tracing) mark('answered', done.length);
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined) this.applied = Math.max(this.applied, last.index);
    if (rd.snapshot !== undefined) this.applied = Math.max(this.applied, rd.snapshot.metadata.index);
    for (const rs of rd.readStates) this.reads.arrived(rs.requestCtx, rs.index, this.ticks + this.requestTimeout);
    this.reads.applied(this.applied);
    this.received.discardUpTo(this.applied);
    await this.maybeSnapshot();
    if (tracing) mark('ready-end');
    if (this.removed) await this.close();
  }

  /**
   * Commits applied entries that no mustSync Ready has carried yet. Runs on the tick, and at once
   * when the loop goes idle with watchers waiting (watch events are announced when durable).
   */
  protected flushApplied(): void {
    if (!this.unsynced || this.closed || this.failure !== undefined) return;
    // a leader's tick always starts a Ready (its heartbeats): flush once that loop ends
    if (this.looping) {
      this.flushWanted = true;
      return;
    }
    if (tracing) mark('flush-applied');
    this.flushWanted = false;
    this.unsynced = false;
    void (async () => this.store.commit())().catch((err: unknown) => this.fail(err));
  }

  protected watchersWaiting(): boolean {
    const s = this.hub.stats();
    return s.synced + s.unsynced > 0;
  }

  /**
   * Hands one committed entry to the state machine, in memory: its effects ride the next commit.
   * `writes` collects raft-bucket and member-list writes for that commit. The proposer's caller is
   * answered after this Ready (afterApply). Returns true when the entry must be durable before
   * then (a conf change: membership is rare and the member list must not run ahead of the file).
   */
  protected applyEntry(e: Entry, writes: RaftWrite[]): boolean {
    if (e.type === 'confChange') {
      const cc: ConfChange = decodeConfChange(e.data);
      let payload: ConfPayload | undefined;
      if (cc.context !== undefined && cc.context.length > 0)
        payload = decodePayload<ConfPayload>(cc.context, `conf change ${e.index}`);
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
      writes.push(
        ...this.members.update(p.memberAttrs.id, { name: p.memberAttrs.name, clientURLs: p.memberAttrs.clientURLs }),
      );
      return true;
    }
    if ('alarm' in p) {
      const { answer, writes: w } = this.alarms.apply({ ...p.alarm, memberId: BigInt(p.alarm.memberId) });
      writes.push(...w);
      this.afterApply.push(() => this.proposals.answer(p.id, answer === undefined ? [] : [answer]));
      return false;
    }
    if ('keepAlive' in p) {
      const id = leaseId(p.keepAlive.ID, 'ID');
      if (this.role === 'leader') this.lessor.renew(id);
      const ttl = this.lessor.ttl(id) ?? 0;
      const header = this.header(mvccHeader(this.store.revision()));
      this.afterApply.push(() =>
        this.proposals.answer(p.id, { header, ID: id, TTL: ttl } satisfies LeaseKeepAliveResponse),
      );
      return false;
    }
    // etcd's corrupt applier: every write refused alike on every member (before the capped one, as
    // etcd stacks them when it restores its alarms)
    if (this.alarms.has('CORRUPT') && refusedWhenCorrupt(p.req)) {
      this.afterApply.push(() => this.proposals.answerError(p.id, corruptCluster()));
      return false;
    }
    // etcd's capped applier: refused alike on every member, so it changes nothing and is not indexed
    if (this.alarms.has('NOSPACE') && addsData(p.req)) {
      this.afterApply.push(() => this.proposals.answerError(p.id, noSpace()));
      return false;
    }
    const r = this.store.applyNow(e.index, p.req);
    if (r === undefined) return false; // applied before a restart
    if (!('error' in r)) this.lessor.applied(p.req, r.response);
    this.afterApply.push(() =>
      'error' in r ? this.proposals.answerError(p.id, r.error) : this.proposals.answer(p.id, r.response),
    );
    return false;
  }

  protected async installSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    let release!: () => void;
    this.installing = new Promise<void>((r) => (release = r));
    try {
      await this.store.close();
      await installSnapshot({
        path: this.opts.path,
        fs: this.opts.fileSystem ?? nodeFileSystem,
        rename: this.opts.rename ?? nodeRename,
        data: snap.data.length > 0 ? snap.data : { file: this.received.take(snap.metadata.index) },
        metadata: snap.metadata,
        hardState: rd.hardState ?? {
          ...this.storage.hardState(),
          commit: Math.max(this.storage.hardState().commit, snap.metadata.index),
        },
      });
      const parts = await openParts(this.opts, this.storage);
      this.backend = parts.backend;
      this.store = parts.store;
      this.members.reload(parts.members);
      this.alarms.reload(this.backend.view((r) => AlarmStore.load(r)));
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
    return this.received.receive(
      m,
      chunks,
      () => {
        this.checkUsable();
      },
      (msg) => this.step(msg),
      (index) => index <= this.node.status().hardState.commit,
    );
  }

  /** etcd's snapshot-count policy: snapshot the applied state, keep catch-up entries behind it. */
  protected async maybeSnapshot(): Promise<void> {
    const count = this.opts.snapshotCount ?? 10_000;
    const due =
      this.applied - this.storage.snapshotIndex() >= count ||
      (this.snapshotSoon && this.applied > this.storage.snapshotIndex());
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

  protected fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    const e = new ReplicationError('ERR_CLOSED', `member ${this.id} stopped: ${String(err)}`, { cause: err });
    this.rejectAll(e);
  }

  protected rejectAll(e: unknown): void {
    this.proposals.rejectAll(e);
    this.reads.rejectAll(e);
    for (const t of this.transfers) t.reject(e);
    this.transfers = [];
  }

  // ------------------------------------------------------------------ proposals

  protected checkUsable(): void {
    if (this.failure !== undefined)
      throw new ReplicationError('ERR_CLOSED', `member ${this.id} failed: ${String(this.failure)}`);
    if (this.closed) throw new ReplicationError('ERR_CLOSED', `member ${this.id} is closed`);
  }

  get isLearner(): boolean {
    return this.confState.learners.includes(this.id);
  }

  protected checkNotLearner(): void {
    if (this.isLearner) throw replicationError('ERR_LEARNER_NOT_SUPPORTED');
  }

  protected propose(req: ApplyRequest): Promise<ApplyResponse> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.proposals.nextId();
    const data = encodePayload({ id, req });
    if (data.length > MAX_REQUEST_BYTES)
      throw new ReplicationError('ERR_INVALID_ARGUMENT', 'etcdserver: request is too large');
    return this.awaitApplied<ApplyResponse>(id, () => this.node.propose(data));
  }

  protected proposeConf(cc: ConfChange, member?: MemberInfo): Promise<MemberInfo[]> {
    this.checkUsable();
    this.checkNotLearner();
    const id = this.proposals.nextId();
    const context = encodePayload(member !== undefined ? { id, member } : { id });
    return this.awaitApplied<MemberInfo[]>(id, () => this.node.proposeConfChange({ ...cc, context }));
  }

  /** Hands a proposal to raft (`send`) and resolves with its answer once it is applied here. */
  protected awaitApplied<T>(id: ProposalId, send: () => void): Promise<T> {
    const p = this.proposals.wait<T>(id, this.ticks + this.requestTimeout, send);
    this.kick();
    return p;
  }

  protected expireRequests(): void {
    this.proposals.expire(this.ticks);
    this.reads.expire(this.ticks, this.ticks + this.requestTimeout);
  }

  // ------------------------------------------------------------------ linearizable reads

  /** Resolves once a linearizable read may be served here (read-loop.ts). */
  protected readBarrier(): Promise<void> {
    this.checkUsable();
    this.checkNotLearner();
    return this.reads.barrier(this.ticks + this.requestTimeout);
  }

  protected async currentStore(): Promise<MvccStore> {
    while (this.installing !== undefined) await this.installing;
    this.checkUsable();
    return this.store;
  }

  protected header(h: ResponseHeader): ResponseHeader {
    return { ...h, memberId: BigInt(this.id), raftTerm: this.term };
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Settles leader transfers: done once the transferee leads, failed at their deadline. */
  protected settleTransfers(): void {
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
