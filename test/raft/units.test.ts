/** Unit and property tests of the raft core's building blocks and of its API's error contract. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MemoryStorage,
  RawNode,
  checkLearnerPromotion,
  decodeConfChange,
  decodeMessage,
  encodeConfChange,
  encodeMessage,
  isRaftError,
  type Entry,
  type Message,
  type RaftErrorCode,
  type Status,
} from '../../src/raft/index.ts';
import { RaftLog } from '../../src/raft/log.ts';
import { Inflights, Progress } from '../../src/raft/progress.ts';
import { majorityCommitted, majorityVoteResult } from '../../src/raft/quorum.ts';

const ent = (index: number, term: number, data = ''): Entry => ({
  index,
  term,
  type: 'normal',
  data: new TextEncoder().encode(data),
});
const code = (c: RaftErrorCode) => (e: unknown) => isRaftError(e, c);

describe('MemoryStorage', () => {
  test('reports compacted and unavailable ranges with typed errors', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 4);
    assert.deepEqual(
      s.entries(2, 4, Infinity).map((e) => e.index),
      [2, 3],
    );
    assert.throws(() => s.entries(2, 6, Infinity), code('ERR_RAFT_UNAVAILABLE'));
    assert.throws(() => s.term(5), code('ERR_RAFT_UNAVAILABLE'));
    s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array([9]));
    s.compact(2);
    assert.equal(s.firstIndex(), 3);
    assert.equal(s.term(2), 1, 'the snapshot index keeps its term');
    assert.throws(() => s.term(1), code('ERR_RAFT_COMPACTED'));
    assert.throws(() => s.entries(2, 3, Infinity), code('ERR_RAFT_COMPACTED'));
    assert.throws(() => s.compact(2), code('ERR_RAFT_COMPACTED'));
    assert.throws(
      () => s.createSnapshot(1, { voters: [1], learners: [] }, new Uint8Array()),
      code('ERR_RAFT_SNAP_OUT_OF_DATE'),
    );
    assert.throws(() => s.append([ent(9, 3)]), code('ERR_RAFT_UNAVAILABLE'), 'a gap is refused');
  });

  test('append overwrites a conflicting suffix and skips compacted entries', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(2, 2)]);
    assert.deepEqual(
      s.entries(1, 3, Infinity).map((e) => [e.index, e.term]),
      [
        [1, 1],
        [2, 2],
      ],
    );
    s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array());
    s.compact(2);
    s.append([ent(1, 1), ent(2, 2), ent(3, 2)]);
    assert.deepEqual(
      s.entries(3, 4, Infinity).map((e) => [e.index, e.term]),
      [[3, 2]],
    );
  });

  test('entries() respects maxSize but returns at least one entry', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 'x'.repeat(100)), ent(2, 1, 'y'), ent(3, 1, 'z')]);
    assert.equal(s.entries(1, 4, 1).length, 1);
    assert.equal(s.entries(2, 4, 60).length, 2);
  });

  test('applySnapshot replaces the log and refuses older snapshots', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1)]);
    const snap = {
      data: new Uint8Array([1]),
      metadata: { index: 10, term: 3, confState: { voters: [1, 2], learners: [3] } },
    };
    s.applySnapshot(snap);
    assert.equal(s.firstIndex(), 11);
    assert.equal(s.lastIndex(), 10);
    assert.equal(s.term(10), 3);
    assert.deepEqual(s.initialState().confState, { voters: [1, 2], learners: [3] });
    assert.throws(() => s.applySnapshot(snap), code('ERR_RAFT_SNAP_OUT_OF_DATE'));
  });
});

describe('RaftLog', () => {
  test('maybeAppend appends after a matching entry and truncates conflicts', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
    const log = new RaftLog(s, Infinity);
    assert.equal(log.maybeAppend(5, 2, 0, [ent(6, 2)]), undefined, 'no entry at 5');
    assert.equal(log.maybeAppend(2, 2, 0, [ent(3, 3)]), undefined, 'term mismatch at 2');
    assert.equal(log.maybeAppend(2, 1, 3, [ent(3, 3), ent(4, 3)]), 4);
    assert.equal(log.term(3), 3);
    assert.equal(log.committed, 3);
    assert.deepEqual(
      log.unstableEntries().map((e) => e.index),
      [3, 4],
    );
    assert.ok(log.isUpToDate(4, 3));
    assert.ok(!log.isUpToDate(9, 2));
  });

  test('findConflictByTerm skips whole terms', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3), ent(6, 3)]);
    const log = new RaftLog(s, Infinity);
    assert.deepEqual(log.findConflictByTerm(6, 2), { index: 4, term: 2 });
    assert.deepEqual(log.findConflictByTerm(6, 1), { index: 2, term: 1 });
    assert.deepEqual(log.findConflictByTerm(6, 0), { index: 0, term: 0 });
  });

  test('maybeCommit only commits entries of the given term', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 2)]);
    const log = new RaftLog(s, Infinity);
    assert.equal(log.maybeCommit(1, 2), false);
    assert.equal(log.maybeCommit(2, 2), true);
    assert.equal(log.committed, 2);
  });
});

describe('flow control and quorum', () => {
  test('Inflights behaves like a bounded FIFO of increasing indexes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.oneof(fc.constant(-1), fc.nat({ max: 50 })), { maxLength: 60 }),
        (size, ops) => {
          const inf = new Inflights(size);
          const model: number[] = [];
          let last = 0;
          for (const op of ops) {
            if (op === -1) {
              if (inf.full()) continue;
              last += 1;
              inf.add(last);
              model.push(last);
            } else {
              inf.freeLE(op);
              while (model.length > 0 && model[0]! <= op) model.shift();
            }
            assert.equal(inf.count(), model.length);
            assert.equal(inf.full(), model.length >= size);
          }
        },
      ),
    );
  });

  test('Progress: probe sends one append at a time, replicate streams up to the window', () => {
    const pr = new Progress(5, 2, false);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(1, 5);
    assert.equal(pr.isPaused(), true, 'probe waits for an answer');
    assert.equal(pr.maybeUpdate(5), true);
    pr.becomeReplicate();
    pr.sentEntries(1, 6);
    pr.sentEntries(1, 7);
    assert.equal(pr.isPaused(), true, 'window of 2 is full');
    pr.inflights.freeLE(6);
    pr.maybeUpdate(6);
    assert.equal(pr.isPaused(), false);
    assert.equal(pr.maybeDecrTo(6, 0), false, 'stale rejection ignored in replicate');
    assert.equal(pr.maybeDecrTo(7, 0), true);
    assert.equal(pr.next, 7);
    pr.becomeSnapshot(20);
    assert.equal(pr.isPaused(), true);
    pr.becomeProbe();
    assert.equal(pr.next, 21, 'probe resumes after the snapshot');
  });

  test('majorityCommitted equals the index a majority of voters reached (model check)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 100 }), { minLength: 1, maxLength: 7 }), (matches) => {
        const ids = matches.map((_, i) => i + 1);
        const got = majorityCommitted(ids, (id) => matches[id - 1]);
        const q = Math.floor(ids.length / 2) + 1;
        assert.ok(matches.filter((m) => m >= got).length >= q, 'a majority reached it');
        assert.ok(matches.filter((m) => m >= got + 1).length < q, 'and it is the highest such index');
      }),
    );
  });

  test('majorityVoteResult: won, lost and pending', () => {
    const v = (o: Record<number, boolean>) => new Map(Object.entries(o).map(([k, b]) => [Number(k), b]));
    assert.equal(majorityVoteResult([1, 2, 3], v({ 1: true, 2: true })), 'won');
    assert.equal(majorityVoteResult([1, 2, 3], v({ 1: true, 2: false })), 'pending');
    assert.equal(majorityVoteResult([1, 2, 3], v({ 1: true, 2: false, 3: false })), 'lost');
    assert.equal(majorityVoteResult([1, 2, 3], v({ 1: true, 4: true, 5: true })), 'pending', 'non-voters ignored');
  });
});

const arbBytes = fc.uint8Array({ maxLength: 16 });
const arbEntry = fc.record({
  term: fc.nat({ max: 1000 }),
  index: fc.nat({ max: 1000 }),
  type: fc.constantFrom('normal' as const, 'confChange' as const),
  data: arbBytes,
});
const arbMessage: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(
      'app' as const,
      'appResp' as const,
      'vote' as const,
      'heartbeat' as const,
      'readIndex' as const,
      'snap' as const,
    ),
    to: fc.nat({ max: 9 }),
    from: fc.nat({ max: 9 }),
    term: fc.nat({ max: 99 }),
    logTerm: fc.nat({ max: 99 }),
    index: fc.nat({ max: 999 }),
    entries: fc.array(arbEntry, { maxLength: 3 }).map((es) => es.map((e, i) => ({ ...e, index: 10 + i }))),
    commit: fc.nat({ max: 999 }),
    reject: fc.boolean(),
    rejectHint: fc.nat({ max: 999 }),
    snapshot: fc.record({
      data: arbBytes,
      metadata: fc.record({
        index: fc.nat({ max: 99 }),
        term: fc.nat({ max: 9 }),
        confState: fc.constant({ voters: [1, 2], learners: [3] }),
      }),
    }),
    context: arbBytes,
  })
  .map((m) => (m.type === 'snap' ? m : (({ snapshot: _s, ...rest }) => rest)(m)) as Message);

/** Buffers (what msgpackr decodes to) and Uint8Arrays compare equal once turned into arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('codec', () => {
  test('messages round-trip through msgpack', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const back = decodeMessage(encodeMessage(m));
        assert.deepEqual(plain(back), plain(m));
      }),
    );
  });

  test('conf changes round-trip; garbage is ERR_RAFT_DECODE, never a TypeError', () => {
    const cc = { type: 'addLearnerNode' as const, nodeId: 7, context: new Uint8Array([1, 2]) };
    const back = decodeConfChange(encodeConfChange(cc));
    assert.equal(back.type, cc.type);
    assert.equal(back.nodeId, 7);
    assert.deepEqual([...back.context!], [1, 2]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        for (const f of [decodeMessage, decodeConfChange]) {
          try {
            f(bytes);
          } catch (e) {
            assert.ok(isRaftError(e, 'ERR_RAFT_DECODE'), `unexpected ${String(e)}`);
          }
        }
      }),
    );
    assert.throws(() => decodeMessage(encodeConfChange(cc)), code('ERR_RAFT_DECODE'));
    assert.throws(() => encodeConfChange({ type: 'nope', nodeId: 1 } as never), code('ERR_RAFT_INVALID_CONF_CHANGE'));
  });
});

describe('RawNode API contract', () => {
  const base = () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({
      data: new Uint8Array(),
      metadata: { index: 1, term: 1, confState: { voters: [1, 2], learners: [] } },
    });
    return storage;
  };

  test('invalid options are ERR_RAFT_INVALID_CONFIG', () => {
    const bad: Array<Record<string, unknown>> = [
      { id: 0 },
      { id: 1.5 },
      { heartbeatTick: 0 },
      { electionTick: 1, heartbeatTick: 1 },
      { maxInflightMsgs: 0 },
      { readOnlyOption: 'leaseBased' },
      { readOnlyOption: 'fast' },
      { applied: 99 },
    ];
    for (const o of bad) {
      assert.throws(
        () => new RawNode({ id: 1, storage: base(), electionTick: 10, heartbeatTick: 1, ...o } as never),
        code('ERR_RAFT_INVALID_CONFIG'),
        JSON.stringify(o),
      );
    }
  });

  test('step rejects local message types and malformed messages with typed errors', () => {
    const n = new RawNode({ id: 1, storage: base(), electionTick: 10, heartbeatTick: 1 });
    const m = {
      type: 'hup',
      to: 1,
      from: 2,
      term: 0,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    } as Message;
    assert.throws(() => n.step(m), code('ERR_RAFT_STEP_LOCAL_MSG'));
    assert.throws(() => n.step({ ...m, type: 'bogus' } as never), code('ERR_RAFT_INVALID_MESSAGE'));
    assert.throws(() => n.step({ ...m, type: 'app', term: -1 }), code('ERR_RAFT_INVALID_MESSAGE'));
    assert.throws(() => n.step(null as never), code('ERR_RAFT_INVALID_MESSAGE'));
    assert.throws(() => n.step({ ...m, type: 'appResp', from: 9, term: 1 }), code('ERR_RAFT_STEP_PEER_NOT_FOUND'));
    assert.throws(() => n.propose('x' as never), code('ERR_RAFT_INVALID_MESSAGE'));
    assert.throws(() => n.propose(new Uint8Array([1])), code('ERR_RAFT_PROPOSAL_DROPPED'), 'no leader yet');
    assert.throws(() => n.readIndex(new Uint8Array([1])), code('ERR_RAFT_PROPOSAL_DROPPED'));
    assert.throws(() => n.proposeConfChange([]), code('ERR_RAFT_INVALID_CONF_CHANGE'));
    assert.throws(() => n.applyConfChange({ type: 'addNode', nodeId: 0 }), code('ERR_RAFT_INVALID_CONF_CHANGE'));
    assert.throws(() => n.reportSnapshot(2, 'maybe' as never), code('ERR_RAFT_INVALID_MESSAGE'));
  });

  test('ready() twice without advance(), or advance() with another Ready, is refused', () => {
    const n = new RawNode({ id: 1, storage: base(), electionTick: 10, heartbeatTick: 1 });
    n.campaign();
    assert.ok(n.hasReady());
    const rd = n.ready();
    assert.equal(rd.messages.length, 1);
    assert.equal(rd.hardState?.term, 1);
    assert.equal(rd.mustSync, true);
    assert.throws(() => n.ready(), code('ERR_RAFT_READY_MISMATCH'));
    assert.throws(() => n.advance({ ...rd }), code('ERR_RAFT_READY_MISMATCH'));
    n.advance(rd);
    assert.equal(n.hasReady(), false);
  });

  test('a single-voter node elects itself, commits and hands out committed entries', () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({
      data: new Uint8Array(),
      metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } },
    });
    const n = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1 });
    n.campaign();
    n.propose(new TextEncoder().encode('hello'));
    const rd = n.ready();
    assert.equal(rd.softState?.raftState, 'leader');
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    assert.deepEqual(
      rd.committedEntries.map((e) => new TextDecoder().decode(e.data)),
      ['', 'hello'],
    );
    n.advance(rd);
    assert.equal(n.status().applied, 3);
    n.readIndex(new Uint8Array([7]));
    const rd2 = n.ready();
    assert.deepEqual(
      rd2.readStates.map((r) => [r.index, [...r.requestCtx]]),
      [[3, [7]]],
    );
    n.advance(rd2);
  });
});

describe('checkLearnerPromotion', () => {
  const status = (progress: Array<[number, number, boolean]>): Status => ({
    id: 1,
    hardState: { term: 1, vote: 1, commit: 0 },
    softState: { lead: 1, raftState: 'leader' },
    applied: 0,
    lastIndex: 100,
    leadTransferee: 0,
    config: { voters: [1], learners: [] },
    progress: new Map(
      progress.map(([id, match, isLearner]) => [
        id,
        {
          match,
          next: match + 1,
          state: 'replicate' as const,
          isLearner,
          recentActive: true,
          inflight: 0,
          paused: false,
          pendingSnapshot: 0,
        },
      ]),
    ),
  });

  test('the 90% threshold', () => {
    assert.equal(
      checkLearnerPromotion(
        status([
          [1, 100, false],
          [2, 90, true],
        ]),
        2,
      ).ok,
      true,
    );
    const v = checkLearnerPromotion(
      status([
        [1, 100, false],
        [2, 89, true],
      ]),
      2,
    );
    assert.deepEqual(v, { ok: false, reason: 'lagging', learnerMatch: 89, leaderMatch: 100 });
    assert.equal(
      checkLearnerPromotion(
        status([
          [1, 100, false],
          [2, 50, true],
        ]),
        2,
        0.5,
      ).ok,
      true,
    );
    assert.deepEqual(checkLearnerPromotion(status([[1, 100, false]]), 3).ok === false && 'notMember', 'notMember');
    assert.throws(() => checkLearnerPromotion(status([]), 2, 1.5), code('ERR_RAFT_INVALID_CONFIG'));
  });
});
