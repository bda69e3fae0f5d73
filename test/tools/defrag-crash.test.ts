/**
 * Crash safety of online defragmentation over the fault-injecting file layer: a defragment runs
 * while a writer commits; the machine dies at every mutating I/O call in turn (write, writev, sync,
 * truncate, rename, remove), and each crash image (process death, dropped unsynced writes, a
 * reordering disk, a torn write) must reopen as one complete database: check() clean, holding
 * exactly the state after some commit between the last one that returned and the last one tried,
 * and accepting a new commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, type DB } from '../../src/bolt/index.ts';
import { CRASH_MODES, FaultyDisk, MUTATING_OPS } from '../support/faulty-fs.ts';
import { applyTo, expected, stateOf } from './history.ts';

const PATH = '/data/app.db';
const BASE_COMMITS = 30;
const WRITER_COMMITS = 6;
const STRESS = process.env.BOLTKV_STRESS === '1';

/** A durable, fragmented base image. */
function baseImage(): Map<string, Uint8Array> {
  const disk = new FaultyDisk({ seed: 7 });
  const db = open(PATH, { fileSystem: disk.fs, pageSize: 1024 });
  for (let i = 1; i <= BASE_COMMITS; i++) db.update((tx) => applyTo(tx, i));
  db.update((tx) => {
    const f = tx.createBucket('filler');
    for (let i = 0; i < 400; i++) f.put(`f${i}`, 'x'.repeat(200));
  });
  db.update((tx) => {
    const f = tx.bucket('filler')!;
    for (let i = 0; i < 400; i++) if (i % 10 !== 0) f.delete(`f${i}`);
  });
  db.close();
  return disk.crashImage('drop');
}

interface Run {
  disk: FaultyDisk;
  returned: number;
  attempted: number;
  calls: number;
}

/** Defragment with a concurrent writer; crash at the Nth mutating call if given. */
async function run(image: Map<string, Uint8Array>, crashAt?: number): Promise<Run> {
  const disk = new FaultyDisk({ seed: 11, files: image });
  const db: DB = open(PATH, { fileSystem: disk.fs });
  const start = disk.count(MUTATING_OPS);
  if (crashAt !== undefined) disk.crashAt(crashAt, { ops: MUTATING_OPS });
  let returned = BASE_COMMITS;
  let attempted = BASE_COMMITS;
  const writer = (async () => {
    for (let i = BASE_COMMITS + 1; i <= BASE_COMMITS + WRITER_COMMITS; i++) {
      attempted = i;
      try {
        await db.updateAsync((tx) => applyTo(tx, i));
      } catch {
        return;
      }
      returned = i;
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  let failure: unknown;
  try {
    await db.defragment({ txMaxSize: 2048, settleChanges: 0, maxRounds: 2 });
  } catch (err) {
    failure = err;
  }
  await writer;
  if (!disk.crashed) {
    assert.equal(failure, undefined, `defragment failed without a crash: ${String(failure)}`);
    // Finish cleanly so the "no crash" image is also checked (close writes the freelist: it may crash too).
    try {
      db.close();
    } catch (err) {
      if (!disk.crashed) throw err;
    }
  } else {
    assert.equal((failure as { code?: string } | undefined)?.code ?? 'ERR_IO', 'ERR_IO');
  }
  return { disk, returned, attempted, calls: disk.count(MUTATING_OPS) - start };
}

function verify(image: Map<string, Uint8Array>, r: Run, label: string): void {
  const disk = new FaultyDisk({ seed: 3, files: image });
  const db = open(PATH, { fileSystem: disk.fs });
  try {
    assert.deepEqual(db.check(), [], `${label}: check()`);
    const s = stateOf(db);
    assert.ok(
      s.n >= r.returned && s.n <= r.attempted,
      `${label}: holds commit ${s.n}, expected ${r.returned}..${r.attempted}`,
    );
    for (const k of [...s.state.keys()]) if (k.startsWith('filler')) s.state.delete(k);
    assert.deepEqual(s.state, expected(s.n), `${label}: exactly commit ${s.n}`);
    assert.equal(
      db.view((tx) => tx.bucket('filler')?.get('f390')?.length),
      200,
      `${label}: filler kept`,
    );
    db.update((tx) => applyTo(tx, s.n + 1));
    assert.equal(stateOf(db).n, s.n + 1, `${label}: accepts a commit`);
  } finally {
    db.close();
  }
}

test('defragment: a crash at any I/O call leaves one complete database', { timeout: 120_000 }, async () => {
  const image = baseImage();
  const dry = await run(image);
  assert.equal(dry.returned, BASE_COMMITS + WRITER_COMMITS);
  verify(dry.disk.crashImage('process'), dry, 'no crash');
  assert.ok(dry.calls > 20, `the dry run made ${dry.calls} mutating calls`);
  const step = STRESS ? 1 : Math.max(1, Math.floor(dry.calls / 60));
  let crashes = 0;
  for (let at = 1; at <= dry.calls + 2; at += step) {
    const r = await run(image, at);
    if (!r.disk.crashed) continue;
    crashes++;
    for (const mode of CRASH_MODES) {
      const seeds = mode === 'subset' || mode === 'tear' ? (STRESS ? 4 : 2) : 1;
      for (let seed = 0; seed < seeds; seed++) {
        verify(
          r.disk.crashImage(mode, seed),
          r,
          `crash at mutating call ${at} (${r.disk.crashPoint?.op}), ${mode}/${seed}`,
        );
      }
    }
  }
  assert.ok(crashes >= Math.min(40, dry.calls / step - 2), `crashed ${crashes} times`);
});
