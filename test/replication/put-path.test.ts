// A put's path through a quiet three-member cluster, counted rather than timed: the answer must
// come from message delivery and disk commits alone (no tick), and cost each member exactly one
// bolt commit (two fdatasyncs) — the apply rides the next commit instead of adding one before
// the response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Member } from '../../src/replication/index.ts';
import type { MemberInfo } from '../../src/replication/index.ts';
import type { Message } from '../../src/raft/index.ts';
import { countingFileSystem } from '../support/counting-fs.ts';

test('a put through the leader or a follower of a quiet cluster is answered without a tick, for one bolt commit per member', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-put-path-'));
  const ids = [1, 2, 3];
  const initial: MemberInfo[] = ids.map((id) => ({
    id,
    name: `m${id}`,
    peerURLs: [`sim://m${id}`],
    clientURLs: [],
    isLearner: false,
  }));
  const counters = new Map(ids.map((id) => [id, { syncs: 0, writes: 0, bytes: 0 }]));
  const members = new Map<number, Member>();
  let inFlight = 0;
  let ticks = 0;
  // Loopback-like delivery: each message arrives in a later turn of the event loop.
  const send = (msgs: Message[]): void => {
    for (const m of msgs) {
      inFlight++;
      setImmediate(() => {
        inFlight--;
        members.get(m.to)?.step(m);
      });
    }
  };
  try {
    let seed = 1;
    for (const id of ids) {
      members.set(
        id,
        await Member.open({
          id,
          path: join(dir, `m${id}.db`),
          fileSystem: countingFileSystem(counters.get(id)!),
          send,
          initialCluster: initial,
          random: () => (seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff,
          compactionBatchIntervalMs: 0,
        }),
      );
    }
    const all = [...members.values()];
    /** Until no message is in flight and no member's Ready loop runs. */
    const quiesce = async (): Promise<void> => {
      for (;;) {
        await Promise.all(all.map((m) => m.idle()));
        await new Promise<void>((r) => setImmediate(r));
        if (inFlight === 0 && all.every((m) => !m.busy)) return;
      }
    };
    const tickAll = async (): Promise<void> => {
      for (const m of all) m.tick();
      ticks++;
      await quiesce();
    };
    const leaderOf = (): Member | undefined => all.find((m) => m.memberStatus().leader === m.id);
    for (let i = 0; i < 200 && (leaderOf() === undefined || all.some((m) => m.memberStatus().leader === 0)); i++)
      await tickAll();
    const leader = leaderOf();
    assert.ok(leader !== undefined, 'a leader was elected');
    // a few heartbeats so the election's entries are applied everywhere, then a tick that flushes them
    for (let i = 0; i < 3; i++) await tickAll();
    await leader.put({ key: 'warm', value: '1' }).then(async () => tickAll());
    await quiesce();

    const follower = all.find((m) => m !== leader)!;
    for (const [via, key] of [
      [leader, 'a'],
      [follower, 'b'],
      [leader, 'c'],
      [follower, 'd'],
    ] as const) {
      const ticksBefore = ticks;
      for (const c of counters.values()) c.syncs = 0;
      let settled: 'no' | 'ok' | 'failed' = 'no';
      via.put({ key, value: 'v' }).then(
        () => (settled = 'ok'),
        () => (settled = 'failed'),
      );
      // Only messages and commits run from here: if the answer needed a tick, the cluster would go
      // quiet with the put still waiting.
      await quiesce();
      await new Promise<void>((r) => setImmediate(r));
      assert.equal(settled, 'ok', `put ${key} through member ${via.id} answered once the cluster is quiet`);
      assert.equal(ticks, ticksBefore);
      for (const [id, c] of counters)
        assert.equal(
          c.syncs,
          2,
          `member ${id}: one bolt commit (data, then meta) for put ${key}, got ${c.syncs} syncs`,
        );
    }
    // every member holds the four keys once a tick has flushed the last applies
    await tickAll();
    // Heartbeats and their answers write nothing: ticking a quiet cluster commits nothing (each
    // follower committed an empty transaction, two fdatasyncs, after most heartbeats before).
    await tickAll();
    // a tick's flush of the last applies is not part of the Ready loop: let it finish first
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    await settle();
    for (const c of counters.values()) c.syncs = 0;
    for (let i = 0; i < 20; i++) await tickAll();
    await settle();
    for (const [id, c] of counters) assert.equal(c.syncs, 0, `member ${id}: fdatasyncs over 20 quiet ticks`);

    // While puts keep committing, a tick between them commits nothing of its own: the next put's
    // commit carries the applies (each tick committed them apart before, four fdatasyncs a put).
    // Once the puts stop, the next tick commits what is left.
    for (let i = 0; i < 10; i++) {
      let settled: 'no' | 'ok' | 'failed' = 'no';
      leader.put({ key: `t${i}`, value: 'v' }).then(
        () => (settled = 'ok'),
        () => (settled = 'failed'),
      );
      await quiesce();
      assert.equal(settled, 'ok', `put t${i}`);
      await tickAll();
      await settle();
    }
    for (const [id, c] of counters)
      assert.equal(c.syncs, 20, `member ${id}: fdatasyncs for 10 puts with a tick after each`);
    // the first tick with no commit since the one before commits the last put's apply, and only once
    for (let i = 0; i < 3; i++) await tickAll();
    await settle();
    for (const [id, c] of counters) assert.equal(c.syncs, 22, `member ${id}: the quiet ticks commit the applies once`);
    for (const m of all) {
      const r = await m.range({ key: 'a', rangeEnd: 'e', serializable: true });
      assert.deepEqual(
        r.kvs.map((kv) => new TextDecoder().decode(kv.key)),
        ['a', 'b', 'c', 'd'],
        `member ${m.id}`,
      );
    }
  } finally {
    for (const m of members.values()) await m.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
