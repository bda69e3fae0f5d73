/**
 * A deterministic in-memory cluster for testing the raft core: every node is a RawNode over a
 * MemoryStorage, the "network" is a queue the test (or fast-check) delivers, drops, duplicates and
 * reorders, and the application is a log of applied entry keys. Invariants are checked by
 * checkInvariants() from the outside, through storage, status() and observed messages only.
 */
import { Packr } from 'msgpackr';
import {
  MemoryStorage,
  RawNode,
  decodeConfChange,
  decodeMessage,
  encodeMessage,
  isRaftError,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type RawNodeOptions,
  type Status,
} from '../../src/raft/index.ts';
import { mulberry32 } from '../support/rng.ts';

const packr = new Packr({ useRecords: false });
const enc = new TextEncoder();
const dec = new TextDecoder();

export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${dec.decode(e.data)}`;
}

export interface ClusterOptions {
  voters: number[];
  learners?: number[];
  /** Ids that exist as processes but are not members yet (they may be added later). */
  spares?: number[];
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  /** Take a snapshot and compact once this many entries were applied since the last one. */
  snapshotEvery?: number;
  seed?: number;
}

export interface PendingRead {
  ctx: string;
  node: number;
  /** Highest index applied anywhere when the read started: every acknowledged write is <= it. */
  ackedAtStart: number;
  index?: number;
}

export class SimNode {
  raw: RawNode | undefined;
  readonly storage = new MemoryStorage();
  /** Applied entry keys, index 1.. */
  sm: string[] = [];
  confState: ConfState = { voters: [], learners: [] };
  reads: PendingRead[] = [];
  constructor(readonly id: number) {}
  get applied(): number {
    return this.sm.length;
  }
}

export interface Envelope {
  m: Message;
}

export class InvariantError extends Error {}

export class Cluster {
  readonly nodes = new Map<number, SimNode>();
  queue: Envelope[] = [];
  /** Node id -> partition group; messages cross groups only when both are in the same group. */
  group = new Map<number, number>();
  readonly opts: Required<Omit<ClusterOptions, 'learners' | 'spares' | 'seed'>> & { seed: number };
  /** index -> key of every entry ever applied anywhere: the one history. */
  readonly history = new Map<number, string>();
  /** index -> { key, term of the first node seen with it committed } */
  readonly committed = new Map<number, { key: string; term: number }>();
  readonly leaderOfTerm = new Map<number, number>();
  /** term -> candidate -> voters that granted it (observed on delivery). */
  readonly grants = new Map<number, Map<number, Set<number>>>();
  private readonly prevCommit = new Map<number, number>();
  private readonly rand: () => number;
  maxApplied = 0;
  /** Check invariants after every step of runUntil(). */
  autoCheck = true;
  readsServed = 0;
  snapshotsDelivered = 0;
  confChangesApplied = 0;
  private ctxSeq = 0;
  private propSeq = 0;
  readonly allIds: number[];

  constructor(o: ClusterOptions) {
    this.opts = {
      voters: o.voters,
      electionTick: o.electionTick ?? 3,
      heartbeatTick: o.heartbeatTick ?? 1,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      maxInflightMsgs: o.maxInflightMsgs ?? 4,
      maxSizePerMsg: o.maxSizePerMsg ?? 200,
      snapshotEvery: o.snapshotEvery ?? 8,
      seed: o.seed ?? 1,
    };
    this.rand = mulberry32(this.opts.seed);
    const learners = o.learners ?? [];
    this.allIds = [...o.voters, ...learners, ...(o.spares ?? [])].sort((a, b) => a - b);
    const cs: ConfState = { voters: [...o.voters], learners: [...learners] };
    const boot = entryKey({ term: 1, index: 1, type: 'normal', data: enc.encode('boot') });
    this.history.set(1, boot);
    for (const id of this.allIds) {
      const n = new SimNode(id);
      if (o.voters.includes(id) || learners.includes(id)) {
        // Bootstrap members with a snapshot at index 1 holding the initial membership.
        n.storage.applySnapshot({ data: packr.pack([boot]), metadata: { index: 1, term: 1, confState: cs } });
        n.sm = [boot];
        n.confState = cs;
      }
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  private nodeOptions(n: SimNode): RawNodeOptions {
    return {
      id: n.id,
      storage: n.storage,
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      maxSizePerMsg: this.opts.maxSizePerMsg,
      applied: n.storage.snapshot().metadata.index,
      random: mulberry32(Math.floor(this.rand() * 2 ** 31) + n.id),
    };
  }

  private start(n: SimNode): void {
    const snap = n.storage.snapshot();
    n.sm = snap.metadata.index === 0 ? [] : (packr.unpack(snap.data) as string[]);
    n.confState = n.storage.initialState().confState;
    n.reads = [];
    n.raw = new RawNode(this.nodeOptions(n));
    // A restarted node re-applies committed entries from its log right away.
    this.process(n.id);
  }

  node(id: number): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  alive(id: number): boolean {
    return this.node(id).raw !== undefined;
  }

  crash(id: number): void {
    const n = this.node(id);
    n.raw = undefined;
    n.reads = [];
  }

  restart(id: number): void {
    const n = this.node(id);
    if (n.raw) return;
    this.start(n);
  }

  status(id: number): Status | undefined {
    return this.node(id).raw?.status();
  }

  leaders(): number[] {
    const out: number[] = [];
    for (const n of this.nodes.values()) if (n.raw?.status().softState.raftState === 'leader') out.push(n.id);
    return out;
  }

  /** The leader with the highest term, if any. */
  leader(): number | undefined {
    let best: number | undefined;
    let bestTerm = -1;
    for (const id of this.leaders()) {
      const t = this.status(id)!.hardState.term;
      if (t > bestTerm) {
        bestTerm = t;
        best = id;
      }
    }
    return best;
  }

  connected(a: number, b: number): boolean {
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  isolate(id: number): void {
    this.group.set(id, 1000 + id);
  }

  heal(): void {
    this.group.clear();
  }

  tick(id: number): void {
    const n = this.node(id);
    if (!n.raw) return;
    n.raw.tick();
    this.process(id);
  }

  tickAll(): void {
    for (const id of this.allIds) this.tick(id);
  }

  // ---- network -----------------------------------------------------------------------------

  private deliverEnvelope(env: Envelope): void {
    // Every message crosses the wire format, as it would between processes.
    const m = decodeMessage(encodeMessage(env.m));
    const to = this.nodes.get(m.to);
    const sender = this.nodes.get(m.from);
    if (!to || !to.raw || !this.connected(m.from, m.to)) {
      this.onLost(env);
      return;
    }
    if (m.type === 'voteResp' && !m.reject) {
      let byCand = this.grants.get(m.term);
      if (!byCand) this.grants.set(m.term, (byCand = new Map()));
      let set = byCand.get(m.to);
      if (!set) byCand.set(m.to, (set = new Set()));
      set.add(m.from);
    }
    try {
      to.raw.step(m);
    } catch (err) {
      if (!isRaftError(err, 'ERR_RAFT_STEP_PEER_NOT_FOUND')) throw err;
    }
    this.process(m.to);
    if (m.type === 'snap') this.snapshotsDelivered++;
    if (m.type === 'snap' && sender?.raw) {
      sender.raw.reportSnapshot(m.to, 'finish');
      this.process(m.from);
    }
  }

  private onLost(env: Envelope): void {
    const sender = this.nodes.get(env.m.from);
    if (!sender?.raw) return;
    if (env.m.type === 'snap') {
      sender.raw.reportSnapshot(env.m.to, 'failure');
      this.process(env.m.from);
    } else if (env.m.type === 'app' && !this.connected(env.m.from, env.m.to)) {
      sender.raw.reportUnreachable(env.m.to);
      this.process(env.m.from);
    }
  }

  deliver(k: number): void {
    if (this.queue.length === 0) return;
    const [env] = this.queue.splice(k % this.queue.length, 1);
    this.deliverEnvelope(env!);
  }

  drop(k: number): void {
    if (this.queue.length === 0) return;
    const [env] = this.queue.splice(k % this.queue.length, 1);
    this.onLost(env!);
  }

  duplicate(k: number): void {
    if (this.queue.length === 0) return;
    const env = this.queue[k % this.queue.length]!;
    this.queue.push({ m: structuredClone(env.m) });
  }

  /** Delivers everything queued now, in order (new messages wait for the next call). */
  deliverAll(): void {
    const batch = this.queue;
    this.queue = [];
    for (const env of batch) this.deliverEnvelope(env);
  }

  /** Delivers (in queue order) every queued message matching `pred`; others stay queued. */
  deliverWhere(pred: (m: Message) => boolean): number {
    const picked = this.queue.filter((e) => pred(e.m));
    this.queue = this.queue.filter((e) => !pred(e.m));
    for (const env of picked) this.deliverEnvelope(env);
    return picked.length;
  }

  /** Drops every queued message matching `pred`. */
  dropWhere(pred: (m: Message) => boolean): number {
    const n = this.queue.length;
    this.queue = this.queue.filter((e) => !pred(e.m));
    return n - this.queue.length;
  }

  /** Makes `id` campaign now and delivers until the network is quiet (no ticks). */
  elect(id: number): void {
    this.node(id).raw!.campaign();
    this.process(id);
    this.stabilize();
  }

  /** Ticks and delivers until `cond` holds or `rounds` run out. Returns whether cond held. */
  runUntil(cond: () => boolean, rounds = 500): boolean {
    for (let i = 0; i < rounds; i++) {
      if (cond()) return true;
      this.checked(() => this.deliverAll());
      if (cond()) return true;
      if (this.queue.length === 0) this.checked(() => this.tickAll());
    }
    return cond();
  }

  /** Runs one step and, when `autoCheck` is on, checks the invariants right after it. */
  checked(stepFn: () => void): void {
    const before = this.autoCheck ? this.configs() : undefined;
    stepFn();
    if (before) this.checkInvariants(before);
  }

  /** Delivers until the network is quiet (no ticks). */
  stabilize(max = 1000): void {
    for (let i = 0; i < max && this.queue.length > 0; i++) this.deliverAll();
  }

  // ---- client operations -------------------------------------------------------------------

  /** Proposes a unique payload; returns it, or undefined if the node refused (dropped). */
  propose(id: number, payload?: string): string | undefined {
    const n = this.node(id);
    if (!n.raw) return undefined;
    const p = payload ?? `p${++this.propSeq}`;
    try {
      n.raw.propose(enc.encode(p));
    } catch (err) {
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED')) return undefined;
      throw err;
    }
    this.process(id);
    return p;
  }

  proposeConfChange(id: number, cc: ConfChange): boolean {
    const n = this.node(id);
    if (!n.raw) return false;
    try {
      n.raw.proposeConfChange(cc);
    } catch (err) {
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED') || isRaftError(err, 'ERR_RAFT_INVALID_CONF_CHANGE'))
        return false;
      throw err;
    }
    this.process(id);
    return true;
  }

  read(id: number): PendingRead | undefined {
    const n = this.node(id);
    if (!n.raw) return undefined;
    const r: PendingRead = { ctx: `r${++this.ctxSeq}`, node: id, ackedAtStart: this.maxApplied };
    try {
      n.raw.readIndex(enc.encode(r.ctx));
    } catch (err) {
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED')) return undefined;
      throw err;
    }
    n.reads.push(r);
    this.process(id);
    return r;
  }

  transferLeader(id: number, to: number): void {
    const n = this.node(id);
    if (!n.raw) return;
    n.raw.transferLeader(to);
    this.process(id);
  }

  // ---- the application ---------------------------------------------------------------------

  /** Runs the Ready loop of one node the way docs/raft.md prescribes. */
  process(id: number): void {
    const n = this.node(id);
    const raw = n.raw;
    if (!raw) return;
    for (let guard = 0; raw.hasReady(); guard++) {
      if (guard > 10000) throw new InvariantError(`node ${id}: Ready loop does not settle`);
      const rd = raw.ready();
      // 1. persist
      if (rd.snapshot) {
        n.storage.applySnapshot(rd.snapshot);
      }
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      // 2. send: learners and non-members must never ask for votes
      for (const m of rd.messages) {
        if (m.type === 'vote' || m.type === 'preVote') {
          if (!n.confState.voters.includes(id) && !raw.status().config.voters.includes(id)) {
            throw new InvariantError(`node ${id} (not a voter) sent ${m.type} for term ${m.term}`);
          }
        }
        this.queue.push({ m });
      }
      // 3. apply
      if (rd.snapshot) {
        const s = rd.snapshot;
        n.sm = packr.unpack(s.data) as string[];
        if (n.sm.length !== s.metadata.index) throw new InvariantError(`snapshot data does not match its index`);
        n.confState = s.metadata.confState;
        this.checkPrefix(n);
      }
      for (const e of rd.committedEntries) {
        if (e.index !== n.sm.length + 1) {
          throw new InvariantError(`node ${id} applies index ${e.index} after ${n.sm.length}`);
        }
        const key = entryKey(e);
        n.sm.push(key);
        const h = this.history.get(e.index);
        if (h === undefined) this.history.set(e.index, key);
        else if (h !== key)
          throw new InvariantError(`state machine safety: node ${id} applied ${key} at ${e.index}, history has ${h}`);
        if (e.index > this.maxApplied) this.maxApplied = e.index;
        if (e.type === 'confChange') {
          n.confState = raw.applyConfChange(decodeConfChange(e.data));
          this.confChangesApplied++;
        }
      }
      for (const rs of rd.readStates) {
        const ctx = dec.decode(rs.requestCtx);
        const r = n.reads.find((x) => x.ctx === ctx);
        if (r && r.index === undefined) r.index = rs.index;
      }
      raw.advance(rd);
      this.serveReads(n);
      this.maybeSnapshot(
        n,
        rd.committedEntries.some((e) => e.type === 'confChange'),
      );
    }
  }

  private serveReads(n: SimNode): void {
    n.reads = n.reads.filter((r) => {
      if (r.index === undefined || n.applied < r.index) return true;
      // The read is served from the state at n.applied >= r.index; it must cover every write that
      // was acknowledged (applied anywhere) before the read started.
      if (r.index < r.ackedAtStart) {
        throw new InvariantError(
          `stale read ${r.ctx} on ${n.id}: read index ${r.index} < acknowledged ${r.ackedAtStart}`,
        );
      }
      this.readsServed++;
      return false;
    });
  }

  private maybeSnapshot(n: SimNode, force: boolean): void {
    const snapIndex = n.storage.snapshot().metadata.index;
    const applied = n.applied;
    if (applied <= snapIndex) return;
    if (!force && applied - snapIndex < this.opts.snapshotEvery) return;
    if (applied > n.storage.lastIndex()) return;
    n.storage.createSnapshot(applied, n.confState, packr.pack(n.sm));
    // Keep a couple of entries so slightly lagging followers can still catch up from the log.
    const keepFrom = applied - 2;
    if (keepFrom >= n.storage.firstIndex()) n.storage.compact(keepFrom);
  }

  private checkPrefix(n: SimNode): void {
    for (let i = 0; i < n.sm.length; i++) {
      const h = this.history.get(i + 1);
      if (h !== undefined && h !== n.sm[i]) {
        throw new InvariantError(`state machine safety: node ${n.id} holds ${n.sm[i]} at ${i + 1}, history has ${h}`);
      }
      if (h === undefined) this.history.set(i + 1, n.sm[i]!);
    }
  }

  // ---- invariants --------------------------------------------------------------------------

  private logOf(n: SimNode): { first: number; ents: Entry[] } {
    const first = n.storage.firstIndex();
    return { first, ents: n.storage.entries(first, n.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER) };
  }

  /** Whether node `id` holds the entry (index, key) in its stored log or covered by its snapshot. */
  private holds(id: number, index: number, key: string): boolean {
    const n = this.node(id);
    const first = n.storage.firstIndex();
    // Compacted entries are covered by the snapshot, whose contents are checked against the history.
    if (index < first) return n.storage.snapshot().metadata.index >= index;
    if (index > n.storage.lastIndex()) return false;
    return entryKey(n.storage.entries(index, index + 1, Number.MAX_SAFE_INTEGER)[0]!) === key;
  }

  /**
   * Checks the safety properties. `configsBefore` is every leader's membership before the step, so a
   * commit decided under the old configuration in the same step as a membership change is accepted.
   */
  checkInvariants(configsBefore?: Map<number, ConfState>): void {
    const statuses = new Map<number, Status>();
    for (const n of this.nodes.values()) {
      if (n.raw) statuses.set(n.id, n.raw.status());
    }
    // Election safety: at most one leader per term.
    for (const [id, st] of statuses) {
      if (st.softState.raftState !== 'leader') continue;
      const t = st.hardState.term;
      const prev = this.leaderOfTerm.get(t);
      if (prev !== undefined && prev !== id) throw new InvariantError(`two leaders in term ${t}: ${prev} and ${id}`);
      if (prev === undefined) {
        this.leaderOfTerm.set(t, id);
        // Learners never count: the voters of the winner's configuration alone granted a majority.
        // The election ran under the configuration before or after this step.
        const got = this.grants.get(t)?.get(id) ?? new Set<number>();
        const ok = [configsBefore?.get(id), st.config].some((cfg) => {
          if (!cfg) return false;
          const voters = cfg.voters;
          if (voters.length === 1) return voters[0] === id;
          const counted = voters.filter((v) => v === id || got.has(v)).length;
          return counted >= Math.floor(voters.length / 2) + 1;
        });
        if (!ok) {
          throw new InvariantError(
            `node ${id} leads term ${t} without a majority of voter grants (${[...got].join(',')})`,
          );
        }
      }
    }
    // Record newly committed entries and check they agree across nodes.
    for (const [id, st] of statuses) {
      const n = this.node(id);
      const c = st.hardState.commit;
      const prev = this.prevCommit.get(id) ?? 0;
      if (c > prev) {
        const first = n.storage.firstIndex();
        for (let i = Math.max(prev + 1, first); i <= c; i++) {
          const key = entryKey(n.storage.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!);
          const rec = this.committed.get(i);
          if (!rec) this.committed.set(i, { key, term: st.hardState.term });
          else if (rec.key !== key)
            throw new InvariantError(`committed entry ${i} differs: ${rec.key} vs ${key} on ${id}`);
        }
        // Only voters count: the leader's new commit index is held by a voter majority.
        if (st.softState.raftState === 'leader' && c > 1) {
          const key = this.committed.get(c)?.key;
          if (key !== undefined) {
            const ok = [configsBefore?.get(id), st.config].some((cfg) => {
              if (!cfg || cfg.voters.length === 0) return false;
              const holders = cfg.voters.filter((v) => this.holds(v, c, key)).length;
              return holders >= Math.floor(cfg.voters.length / 2) + 1;
            });
            if (!ok) throw new InvariantError(`leader ${id} committed ${c} without a voter majority holding it`);
          }
        }
        this.prevCommit.set(id, c);
      } else if (c < prev) {
        this.prevCommit.set(id, c);
      }
    }
    // Leader completeness: a leader of a later term holds every committed entry.
    for (const [id, st] of statuses) {
      if (st.softState.raftState !== 'leader') continue;
      for (const [i, rec] of this.committed) {
        if (rec.term >= st.hardState.term) continue;
        if (!this.holds(id, i, rec.key)) {
          throw new InvariantError(
            `leader completeness: leader ${id} of term ${st.hardState.term} lacks committed ${i} (${rec.key})`,
          );
        }
      }
    }
    // Log matching: same index and term implies identical prefixes.
    const logs = [...this.nodes.values()].map((n) => ({ id: n.id, ...this.logOf(n) }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const A = logs[a]!;
        const B = logs[b]!;
        const lo = Math.max(A.first, B.first);
        const hi = Math.min(A.first + A.ents.length, B.first + B.ents.length) - 1;
        let top = -1;
        for (let i = hi; i >= lo; i--) {
          if (A.ents[i - A.first]!.term === B.ents[i - B.first]!.term) {
            top = i;
            break;
          }
        }
        for (let i = lo; i <= top; i++) {
          if (entryKey(A.ents[i - A.first]!) !== entryKey(B.ents[i - B.first]!)) {
            throw new InvariantError(
              `log matching: nodes ${A.id} and ${B.id} differ at ${i} below matching index ${top}`,
            );
          }
        }
      }
    }
    // Applied sequences are prefixes of the one history (also checked on every apply).
    for (const n of this.nodes.values()) {
      for (let i = Math.max(0, n.sm.length - 3); i < n.sm.length; i++) {
        if (this.history.get(i + 1) !== n.sm[i])
          throw new InvariantError(`node ${n.id} diverges from history at ${i + 1}`);
      }
    }
  }

  /** Every live node's membership, to pass to checkInvariants() after the next step. */
  configs(): Map<number, ConfState> {
    const out = new Map<number, ConfState>();
    for (const n of this.nodes.values()) {
      const st = n.raw?.status();
      if (st) out.set(n.id, st.config);
    }
    return out;
  }

  /** Members (voters and learners) according to the given node's applied configuration. */
  members(id: number): number[] {
    const cs = this.status(id)?.config ?? { voters: [], learners: [] };
    return [...cs.voters, ...cs.learners];
  }
}
