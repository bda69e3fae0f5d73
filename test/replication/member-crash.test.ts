// A member crashed at every I/O call of a write workload, in every crash mode, restarts to a file
// that check() accepts, holding every acknowledged write exactly once (the revision counts each
// applied put once: nothing re-applied from the log after the restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../src/bolt/index.ts';
import { CRASH_MODES } from '../support/faulty-fs.ts';
import { SimCluster, path } from './sim/cluster.ts';

const PUTS = 6;

async function workload(c: SimCluster): Promise<number> {
  const m = c.nodes.get(1)!.member!;
  let acked = 0;
  for (let i = 0; i < PUTS; i++) {
    try {
      await c.until(m.put({ key: `k${i}`, value: `v${i}` }), 2000);
      acked++;
    } catch {
      break;
    }
  }
  return acked;
}

test('a single member crashed at every I/O call keeps every acknowledged write exactly once', async () => {
  const dry = new SimCluster(11, [1]);
  await dry.start(1);
  await dry.waitLeader();
  const disk0 = dry.nodes.get(1)!.disk;
  const before = disk0.count();
  assert.equal(await workload(dry), PUTS);
  const calls = disk0.count() - before;
  await dry.closeAll();
  assert.ok(calls >= PUTS * 2, `only ${calls} I/O calls`);
  let checked = 0;
  for (let at = 1; at <= calls; at++) {
    for (const mode of CRASH_MODES) {
      const c = new SimCluster(11, [1]);
      await c.start(1);
      await c.waitLeader();
      const n = c.nodes.get(1)!;
      n.disk.crashAt(at);
      const acked = await workload(c);
      assert.ok(n.disk.crashed, `call ${at}: the crash point was not reached`);
      n.member = undefined; // the machine is gone; no graceful close
      await c.restart(1, mode);
      await c.waitLeader();
      const m = n.member!;
      const r = await c.until(m.range({ key: 'k', rangeEnd: 'l' }));
      const got = r.kvs.map((kv) => Buffer.from(kv.key).toString());
      for (let i = 0; i < acked; i++) assert.ok(got.includes(`k${i}`), `call ${at} (${mode}): acknowledged k${i} lost`);
      assert.ok(got.length <= acked + 1, `call ${at} (${mode}): more writes than attempted`);
      assert.equal(
        r.header.revision,
        1 + got.length,
        `call ${at} (${mode}): a write was applied twice or a revision lost`,
      );
      for (const kv of r.kvs)
        assert.equal(kv.version, 1, `call ${at} (${mode}): ${Buffer.from(kv.key).toString()} applied twice`);
      // and it still takes writes
      await c.until(m.put({ key: 'after', value: 'x' }));
      await c.closeAll();
      const db = open(path(1), { fileSystem: n.disk.fs });
      assert.deepEqual(db.check(), [], `call ${at} (${mode}): check()`);
      db.close();
      checked++;
    }
  }
  assert.ok(checked >= calls * CRASH_MODES.length);
});
