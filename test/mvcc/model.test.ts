/**
 * Model test: random puts / deletes / txns (compares, nested txns) / compactions / reads at random
 * past revisions / close-and-reopen, run against boltkv and against a plain model of etcd's
 * semantics (etcd-model.ts); every response or error must match.
 * Rules checked (etcd-semantics.md): all of "Revisions", "Range", "Put / DeleteRange / Txn" and the
 * read side of "Compaction" (compacted/future errors, reads at exactly the compact revision).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { openStore, MemoryBackend, MvccError, type KVStore } from '../../src/api/index.ts';
import { EtcdModel, type Result } from './etcd-model.ts';
import { plain, resolveRange, stepArb, type Step } from './gen.ts';

interface Harness {
  open(): Promise<KVStore>;
  cleanup(): void;
}

function memoryHarness(): Harness {
  const backend = new MemoryBackend();
  return {
    open: () => openStore({ backend: backend.reopen(), compactionBatchLimit: 3 }),
    cleanup: () => undefined,
  };
}

function boltHarness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-model-'));
  const path = join(dir, 'db');
  return {
    open: () => openStore(path, { bolt: { noSync: true }, compactionBatchLimit: 3 }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function outcome(p: () => Promise<unknown> | unknown): Promise<Result<unknown>> {
  try {
    return { ok: plain(await p()) };
  } catch (e) {
    if (e instanceof MvccError) return { err: e.code };
    throw e;
  }
}

/** What the runs exercised, so a generator change cannot quietly make the test vacuous. */
const seen = new Map<string, number>();
const note = (k: string): void => {
  seen.set(k, (seen.get(k) ?? 0) + 1);
};

async function runSteps(h: Harness, steps: Step[]): Promise<void> {
  const model = new EtcdModel();
  let kv = await h.open();
  try {
    for (const [i, s] of steps.entries()) {
      const where = `step ${i}: ${JSON.stringify(s)}`;
      let got: Result<unknown>;
      let want: Result<unknown>;
      switch (s.t) {
        case 'reopen':
          await kv.close();
          kv = await h.open();
          assert.equal(kv.revision(), model.rev, `${where}: revision after reopen`);
          note('reopen');
          continue;
        case 'range': {
          const r = resolveRange(s.r, model.rev);
          want = model.range(r);
          got = await outcome(() => kv.range(r));
          break;
        }
        case 'put':
          want = model.put(s.r);
          got = await outcome(() => kv.put(s.r));
          break;
        case 'delete':
          want = model.deleteRange(s.r);
          got = await outcome(() => kv.deleteRange(s.r));
          break;
        case 'txn': {
          got = await outcome(() => kv.txn(s.r));
          if ('err' in got && got.err === 'ERR_DUPLICATE_KEY') {
            continue; // etcd's exact duplicate rule is checked by the differential test
          }
          assert.ok(
            !EtcdModel.obviousDuplicate(s.r),
            `${where}: a duplicate key must be rejected, got ${JSON.stringify(got, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
          );
          want = model.txn(s.r);
          break;
        }
        case 'compact': {
          const rev = model.rev - s.back;
          want = model.compact(rev);
          got = await outcome(() => kv.compact({ revision: rev }));
          break;
        }
      }
      assert.deepEqual(got, want, where);
      note(`${s.t}:${'err' in got ? got.err : 'ok'}`);
      if (s.t === 'range' && 'ok' in got && s.r.rev !== undefined) note('range:past-ok');
    }
    // every retained revision reads the same after all that, and after one more reopen
    await kv.close();
    kv = await h.open();
    for (let r = Math.max(model.compactRev, 1); r <= model.rev; r++) {
      const req = { key: '\0', rangeEnd: '\0', revision: r };
      assert.deepEqual(await outcome(() => kv.range(req)), model.range(req), `full read at ${r} after reopen`);
    }
  } finally {
    await kv.close();
  }
}

const RUNS = process.env.BOLTKV_STRESS === '1' ? 2000 : 150;

test('memory backend matches the etcd model', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb(true), { minLength: 1, maxLength: 40, size: 'medium' }), async (steps) => {
      await runSteps(memoryHarness(), steps);
    }),
    { numRuns: RUNS, includeErrorInReport: true },
  );
});

test('bolt backend matches the etcd model', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb(true), { minLength: 1, maxLength: 30, size: 'medium' }), async (steps) => {
      const h = boltHarness();
      try {
        await runSteps(h, steps);
      } finally {
        h.cleanup();
      }
    }),
    { numRuns: Math.ceil(RUNS / 3), includeErrorInReport: true },
  );
});

test('the runs above exercised every kind of step and error', () => {
  if (process.env.SHOW_SEEN) console.log([...seen]);
  for (const k of [
    'put:ok',
    'put:ERR_EMPTY_KEY',
    'put:ERR_KEY_NOT_FOUND',
    'delete:ok',
    'txn:ok',
    'compact:ok',
    'compact:ERR_COMPACTED',
    'compact:ERR_FUTURE_REV',
    'range:ok',
    'range:past-ok',
    'range:ERR_COMPACTED',
    'range:ERR_FUTURE_REV',
    'reopen',
  ]) {
    assert.ok((seen.get(k) ?? 0) > 0, `no ${k} step ran: ${JSON.stringify([...seen])}`);
  }
});
