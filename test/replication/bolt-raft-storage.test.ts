// The bolt-backed raft Storage against MemoryStorage as the model: random sequences of Ready saves
// (appends that may overwrite a suffix, hard states, leader snapshots), local snapshots and
// compactions, restarts. The subject keeps only a byte budget of recent entries in memory (0, a few
// entries, or all of them) and reads the rest from the file. After every step, both before its
// commit lands (entries not yet on disk must still be served) and after, the subject and the state
// reloaded from the buckets must answer every Storage call like the model. Then crash safety: a crash at every I/O call of a sequence of
// commits over the fault-injecting file layer reopens to the state after some committed prefix,
// and a RawNode accepts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import type { Backend } from '../../src/mvcc/backend.ts';
import { MemoryStorage, RawNode, type Entry, type HardState, type Storage } from '../../src/raft/index.ts';
import { BoltRaftStorage } from '../../src/replication/bolt-raft-storage.ts';
import { RaftBackend } from '../../src/replication/raft-backend.ts';
import { FaultyDisk, CRASH_MODES } from '../support/faulty-fs.ts';
import { Rng } from '../support/rng.ts';

type Op =
  | { k: 'append'; back: number; n: number; term: number; commit: boolean }
  | { k: 'snapshot'; back: number; keep: number }
  | { k: 'leaderSnap'; ahead: number }
  | { k: 'vote'; vote: number }
  | { k: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('append' as const),
      back: fc.nat(4),
      n: fc.integer({ min: 1, max: 5 }),
      term: fc.nat(2),
      commit: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('snapshot' as const), back: fc.nat(6), keep: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('leaderSnap' as const), ahead: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('vote' as const), vote: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
);
/** Cache budgets: nothing beyond unsynced entries, a few entries, everything. */
const cacheArb = fc.constantFrom(0, 150, 1 << 20);

/** Drives the model and the subject with the same step; returns false if the step does not apply. */
class Pair {
  readonly model = new MemoryStorage();
  subject: BoltRaftStorage;
  hs: HardState = { term: 1, vote: 0, commit: 0 };
  private seq = 0;
  constructor(
    readonly backend: RaftBackend,
    readonly cacheBytes?: number,
  ) {
    this.subject = BoltRaftStorage.load(backend, cacheBytes !== undefined ? { cacheBytes } : {});
  }

  async step(op: Op): Promise<void> {
    const m = this.model;
    if (op.k === 'append') {
      const last = m.lastIndex();
      const start = Math.max(m.firstIndex(), last + 1 - op.back, this.hs.commit + 1);
      const baseTerm = start - 1 >= m.firstIndex() - 1 ? m.term(start - 1) : 1;
      const term = Math.max(baseTerm, this.hs.term) + op.term;
      const entries: Entry[] = [];
      for (let i = 0; i < op.n; i++) {
        const data = new Uint8Array(1 + ((this.seq * 7) % 23)).fill(this.seq++ & 0xff);
        entries.push({ index: start + i, term, type: i % 3 === 2 ? 'confChange' : 'normal', data });
      }
      this.hs = { ...this.hs, term };
      if (op.commit) this.hs.commit = start + op.n - 1;
      m.append(entries);
      m.setHardState(this.hs);
      this.subject.save({ entries, hardState: this.hs });
    } else if (op.k === 'snapshot') {
      const i = this.hs.commit - op.back;
      if (i <= m.snapshot().metadata.index || i < m.firstIndex()) return;
      const cs = { voters: [1, 2, 3], learners: [(i % 5) + 4] };
      m.createSnapshot(i, cs, new Uint8Array(0));
      this.subject.createSnapshot(i, cs);
      const j = Math.max(m.firstIndex(), i - op.keep);
      if (j > m.firstIndex() - 1 && j <= i) {
        m.compact(j);
        this.subject.compact(j);
      }
    } else if (op.k === 'leaderSnap') {
      const index = m.lastIndex() + op.ahead;
      const term = this.hs.term;
      const snap = { data: new Uint8Array(0), metadata: { index, term, confState: { voters: [1, 2], learners: [] } } };
      this.hs = { ...this.hs, commit: index };
      m.applySnapshot(snap);
      m.setHardState(this.hs);
      this.subject.save({ entries: [], snapshot: snap, hardState: this.hs });
    } else if (op.k === 'restart') {
      if (this.subject.hasWrites()) return;
      this.subject = BoltRaftStorage.load(
        this.backend,
        this.cacheBytes !== undefined ? { cacheBytes: this.cacheBytes } : {},
      );
    } else {
      this.hs = { ...this.hs, term: this.hs.term + 1, vote: op.vote };
      m.setHardState(this.hs);
      this.subject.save({ entries: [], hardState: this.hs });
    }
    // raft may read what it just handed over before the commit carrying it lands
    sameAs(m, this.subject, `before commit of ${op.k}`);
    await this.backend.stage(this.subject.takeWrites());
  }
}

function sameAs(model: MemoryStorage, s: Storage, where: string): void {
  assert.equal(s.firstIndex(), model.firstIndex(), `${where}: firstIndex`);
  assert.equal(s.lastIndex(), model.lastIndex(), `${where}: lastIndex`);
  assert.deepEqual(s.initialState(), model.initialState(), `${where}: initialState`);
  assert.deepEqual(s.snapshot().metadata, model.snapshot().metadata, `${where}: snapshot`);
  for (let i = model.firstIndex() - 1; i <= model.lastIndex(); i++)
    assert.equal(s.term(i), model.term(i), `${where}: term(${i})`);
  if (model.lastIndex() >= model.firstIndex()) {
    assert.deepEqual(
      s.entries(model.firstIndex(), model.lastIndex() + 1, Infinity),
      model.entries(model.firstIndex(), model.lastIndex() + 1, Infinity),
      `${where}: entries`,
    );
    for (const max of [0, 40, 100]) {
      for (const lo of [model.firstIndex(), Math.max(model.firstIndex(), model.lastIndex() - 2)]) {
        assert.deepEqual(
          s.entries(lo, model.lastIndex() + 1, max),
          model.entries(lo, model.lastIndex() + 1, max),
          `${where}: entries from ${lo} within ${max} bytes`,
        );
      }
    }
  }
  for (const [fn, code] of [
    [() => s.term(model.firstIndex() - 2), 'ERR_RAFT_COMPACTED'],
    [() => s.term(model.lastIndex() + 1), 'ERR_RAFT_UNAVAILABLE'],
    [() => s.entries(model.firstIndex() - 1, model.lastIndex() + 1, 1), 'ERR_RAFT_COMPACTED'],
    [() => s.entries(model.firstIndex(), model.lastIndex() + 2, 1), 'ERR_RAFT_UNAVAILABLE'],
  ] as const) {
    if (code === 'ERR_RAFT_COMPACTED' && model.firstIndex() - 2 < 0) continue;
    assert.throws(fn, (e: unknown) => (e as { code?: string }).code === code, `${where}: ${code}`);
  }
}

async function runOps(backend: Backend, ops: Op[], cacheBytes: number): Promise<void> {
  const rb = new RaftBackend(backend);
  const p = new Pair(rb, cacheBytes);
  for (const [n, op] of ops.entries()) {
    const stepDone = p.step(op);
    await rb.flush();
    await stepDone;
    sameAs(p.model, p.subject, `subject after op ${n}`);
    assert.ok(
      p.subject.cachedBytes() <= cacheBytes,
      `cache holds ${p.subject.cachedBytes()} bytes, budget ${cacheBytes}`,
    );
    sameAs(p.model, BoltRaftStorage.load(rb), `reloaded after op ${n}`);
  }
}

test('bolt raft storage answers like MemoryStorage (memory backend, property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), cacheArb, async (ops, cache) =>
      runOps(new MemoryBackend(), ops, cache),
    ),
    { numRuns: 150 },
  );
});

test('bolt raft storage answers like MemoryStorage (bolt file, property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), cacheArb, async (ops, cache) => {
      const disk = new FaultyDisk();
      const backend = BoltBackend.open('/m.db', { fileSystem: disk.fs });
      try {
        await runOps(backend, ops, cache);
        assert.deepEqual(backend.db.check(), []);
      } finally {
        backend.close();
      }
    }),
    { numRuns: 40 },
  );
});

/** A fixed workload: what the storage must reload to after each committed step. */
function workload(seed: number): Op[] {
  const rng = new Rng(seed);
  const ops: Op[] = [];
  for (let i = 0; i < 14; i++) {
    const r = rng.next();
    if (r < 0.65)
      ops.push({ k: 'append', back: rng.int(0, 3), n: rng.int(1, 4), term: rng.int(0, 1), commit: rng.bool() });
    else if (r < 0.85) ops.push({ k: 'snapshot', back: rng.int(0, 3), keep: rng.int(0, 3) });
    else if (r < 0.92) ops.push({ k: 'leaderSnap', ahead: rng.int(1, 4) });
    else ops.push({ k: 'vote', vote: rng.int(1, 3) });
  }
  return ops;
}

interface Observed {
  first: number;
  last: number;
  hs: HardState;
  ents: Entry[];
  snapIndex: number;
}

function observe(s: Storage & { snapshotIndex?: () => number }): Observed {
  const first = s.firstIndex();
  const last = s.lastIndex();
  return {
    first,
    last,
    hs: s.initialState().hardState,
    ents: last >= first ? s.entries(first, last + 1, Infinity) : [],
    snapIndex: s.snapshot().metadata.index,
  };
}

test('a crash at every I/O call reopens to a committed prefix that raft accepts', async () => {
  const PATH = '/raft.db';
  let checked = 0;
  for (const seed of [1, 2, 3]) {
    const ops = workload(seed);
    // dry run: the states after each commit, and the number of I/O calls
    const dry = new FaultyDisk({ seed });
    const states: Observed[] = [];
    const dryBackend = BoltBackend.open(PATH, { fileSystem: dry.fs });
    {
      const rb = new RaftBackend(dryBackend);
      const p = new Pair(rb);
      states.push(observe(p.model));
      for (const op of ops) {
        const d = p.step(op);
        await rb.flush();
        await d;
        states.push(observe(p.model));
      }
      dryBackend.close();
    }
    const calls = dry.count();
    for (let at = 1; at <= calls; at++) {
      const mode = CRASH_MODES[at % CRASH_MODES.length]!;
      const disk = new FaultyDisk({ seed });
      disk.crashAt(at);
      let acked = 0;
      try {
        const backend = BoltBackend.open(PATH, { fileSystem: disk.fs });
        const rb = new RaftBackend(backend);
        const p = new Pair(rb);
        for (const op of ops) {
          const d = p.step(op);
          d.catch(() => undefined);
          await rb.flush();
          await d;
          acked++;
        }
      } catch {
        // the machine died
      }
      if (!disk.crashed) continue;
      checked++;
      const after = disk.reboot(mode, at);
      if (!after.paths().includes(PATH) || after.contents(PATH).length === 0) {
        assert.equal(acked, 0, `seed ${seed} crash at ${at}: file vanished after ${acked} acked commits`);
        continue;
      }
      const b = BoltBackend.open(PATH, { fileSystem: after.fs });
      try {
        assert.deepEqual(b.db.check(), [], `seed ${seed} crash at ${at} (${mode}): check()`);
        // one seed reopens with no cache: every entry then comes from the recovered file
        const s = BoltRaftStorage.load(b, seed === 2 ? { cacheBytes: 0 } : {});
        const got = observe(s);
        const k = states.findIndex(
          (st, i) => i >= acked && i <= acked + 1 && JSON.stringify(st) === JSON.stringify(got),
        );
        assert.ok(
          k >= 0,
          `seed ${seed} crash at ${at} (${mode}): reopened state is not the state after commit ${acked} or ${acked + 1}`,
        );
        // raft accepts it: a node starts over it and can campaign
        const node = new RawNode({ id: 1, storage: s, electionTick: 10, heartbeatTick: 1, applied: s.snapshotIndex() });
        assert.equal(node.status().hardState.commit, got.hs.commit);
      } finally {
        b.close();
      }
    }
  }
  assert.ok(checked > 100, `only ${checked} crash points`);
});
