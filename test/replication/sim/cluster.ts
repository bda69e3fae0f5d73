/**
 * A deterministic simulated cluster: members (raft + revision layer + bolt file on a FaultyDisk)
 * on a simulated network that drops, delays, duplicates and partitions messages. Time is simulated
 * (ms); every event runs and then the whole cluster settles (every member's Ready loop and commits
 * finish) before the next one, so a seed replays exactly. Members can be crashed at any I/O call
 * or killed outright, and restarted from the crash image of their disk.
 */
import type { Message } from '../../../src/raft/index.ts';
import { Member } from '../../../src/replication/member.ts';
import type { MemberOptions } from '../../../src/replication/member-options.ts';
import type { MemberInfo } from '../../../src/replication/proposal.ts';
import { FaultyDisk, CRASH_MODES, type CrashMode } from '../../support/faulty-fs.ts';
import { Rng } from '../../support/rng.ts';

export const TICK_MS = 10;

export interface NetConfig {
  dropRate: number;
  dupRate: number;
  minDelay: number;
  maxDelay: number;
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export interface SimNode {
  id: number;
  disk: FaultyDisk;
  member: Member | undefined;
  /** Sim time until which a killed member stays down. */
  downUntil: number;
  /** Learner joining: start with an empty file and no initial cluster. */
  joining: boolean;
}

export const path = (id: number): string => `/data/m${id}.db`;

export class SimCluster {
  readonly rng: Rng;
  now = 0;
  private seq = 0;
  private events: Event[] = [];
  readonly nodes = new Map<number, SimNode>();
  /** Pairs "a-b" that cannot talk (both directions). */
  readonly cut = new Set<string>();
  net: NetConfig = { dropRate: 0, dupRate: 0, minDelay: 1, maxDelay: 5 };
  /** Member options every start uses. */
  memberOptions: Partial<MemberOptions> = {};
  /** Per-member options on top of those (e.g. each member's client URLs). */
  memberOptionsFor: (id: number) => Partial<MemberOptions> = () => ({});
  readonly initial: MemberInfo[];
  crashes = 0;
  restarts = 0;
  snapshotsSent = 0;

  constructor(seed: number, ids: number[]) {
    this.rng = new Rng(seed);
    this.initial = ids.map((id) => ({
      id,
      name: `m${id}`,
      peerURLs: [`sim://m${id}`],
      clientURLs: [],
      isLearner: false,
    }));
    for (const id of ids)
      this.nodes.set(id, {
        id,
        disk: new FaultyDisk({ seed: seed * 31 + id }),
        member: undefined,
        downUntil: 0,
        joining: false,
      });
  }

  at(delay: number, run: () => void): void {
    this.events.push({ at: this.now + delay, seq: this.seq++, run });
  }

  async start(id: number): Promise<void> {
    const n = this.nodes.get(id)!;
    const rng = new Rng(this.rng.nextU32());
    n.member = await Member.open({
      id,
      path: path(id),
      fileSystem: n.disk.fs,
      rename: (from, to) => {
        if (n.disk.crashed) throw new Error('machine crashed');
        n.disk.setContents(to, n.disk.durableContents(from));
      },
      send: (msgs) => this.send(id, msgs),
      ...(n.joining ? {} : { initialCluster: this.initial }),
      now: () => this.now,
      random: () => rng.next(),
      compactionBatchIntervalMs: 0,
      ...this.memberOptions,
      ...this.memberOptionsFor(id),
    });
  }

  /** Adds a node that will join as a learner (the caller proposes memberAdd first). */
  addNode(id: number): SimNode {
    const n: SimNode = { id, disk: new FaultyDisk({ seed: id * 977 }), member: undefined, downUntil: 0, joining: true };
    this.nodes.set(id, n);
    return n;
  }

  members(): Member[] {
    return [...this.nodes.values()].flatMap((n) =>
      n.member !== undefined && !n.member.isClosed && n.member.failed === undefined ? [n.member] : [],
    );
  }

  leader(): Member | undefined {
    const ls = this.members().filter((m) => m.memberStatus().leader === m.id);
    return ls.sort((a, b) => b.memberStatus().raftTerm - a.memberStatus().raftTerm)[0];
  }

  private send(from: number, msgs: Message[]): void {
    for (const m of msgs) {
      const to = m.to;
      const lost = this.cut.has(`${Math.min(from, to)}-${Math.max(from, to)}`) || this.rng.bool(this.net.dropRate);
      const src = this.nodes.get(from)?.member;
      let msg = m;
      if (m.type === 'snap' && m.snapshot !== undefined && src !== undefined) {
        msg = { ...m, snapshot: { ...m.snapshot, data: src.snapshotBytes() } };
        this.snapshotsSent++;
      }
      if (lost) {
        if (m.type === 'snap') this.at(1, () => src?.reportSnapshot(to, 'failure'));
        else if (this.rng.bool(0.3)) this.at(1, () => src?.reportUnreachable(to));
        continue;
      }
      const copies = this.rng.bool(this.net.dupRate) ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        this.at(this.rng.int(this.net.minDelay, this.net.maxDelay), () => {
          const dst = this.nodes.get(to)?.member;
          if (dst === undefined || dst.isClosed || dst.failed !== undefined) {
            if (m.type === 'snap') src?.reportSnapshot(to, 'failure');
            return;
          }
          dst.step(msg);
          if (m.type === 'snap' && c === 0) this.at(1, () => src?.reportSnapshot(to, 'finish'));
        });
      }
    }
  }

  partition(a: number, b: number): void {
    this.cut.add(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }

  isolate(id: number): void {
    for (const other of this.nodes.keys()) if (other !== id) this.partition(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** The machine dies now; what its disk keeps is decided by `mode` when it restarts. */
  kill(id: number, downMs: number): void {
    const n = this.nodes.get(id)!;
    if (n.member === undefined) return;
    n.disk.crash();
    n.member = undefined;
    n.downUntil = this.now + downMs;
    this.crashes++;
  }

  /** Arms a crash at the Nth I/O call of the member from now. */
  crashAtIo(id: number, nth: number): void {
    this.nodes.get(id)!.disk.crashAt(nth);
  }

  async restart(id: number, mode?: CrashMode): Promise<void> {
    const n = this.nodes.get(id)!;
    n.disk = n.disk.reboot(mode ?? this.rng.pick(CRASH_MODES), this.rng.nextU32());
    await this.start(id);
    this.restarts++;
  }

  /** Runs events (and a tick for every live member each TICK_MS) until sim time `until`. */
  async run(until: number): Promise<void> {
    while (this.now < until) {
      const nextTick = Math.floor(this.now / TICK_MS) * TICK_MS + TICK_MS;
      this.events.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const e = this.events[0];
      if (e !== undefined && e.at <= nextTick && e.at <= until) {
        this.events.shift();
        this.now = Math.max(this.now, e.at);
        e.run();
      } else {
        this.now = Math.min(nextTick, until);
        if (this.now === nextTick) for (const m of this.members()) m.tick();
      }
      await this.settle();
      await this.reap();
    }
  }

  /** Crashed machines (their disk died under them) are taken down and restarted later. */
  private async reap(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.member !== undefined && (n.disk.crashed || n.member.failed !== undefined)) {
        n.member = undefined;
        n.disk.crash();
        n.downUntil = this.now + 50;
        this.crashes++;
      }
      if (n.member === undefined && n.downUntil > 0 && n.downUntil <= this.now) {
        n.downUntil = 0;
        await this.restart(n.id);
      }
    }
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await Promise.all(this.members().map((m) => m.idle()));
      await new Promise<void>((r) => setImmediate(r));
      if (this.members().every((m) => !m.busy)) return;
    }
  }

  /** Waits (in sim time) until some member leads; returns it. */
  async waitLeader(maxMs = 5000): Promise<Member> {
    const end = this.now + maxMs;
    while (this.now < end) {
      const l = this.leader();
      if (l !== undefined) return l;
      await this.run(this.now + TICK_MS);
    }
    throw new Error(`no leader after ${maxMs} ms of sim time`);
  }

  /** Runs the sim until the promise settles (or maxMs passes). */
  async until<T>(p: Promise<T>, maxMs = 5000): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    const end = this.now + maxMs;
    while (!done && this.now < end) await this.run(this.now + TICK_MS);
    if (!done) throw new Error('sim: operation did not settle');
    return p;
  }

  async closeAll(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.member !== undefined && !n.disk.crashed) await n.member.close().catch(() => undefined);
      n.member = undefined;
    }
  }
}
