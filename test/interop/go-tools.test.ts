// Checks our Go helpers and the workload model against each other before they judge boltkv:
// a file Go's bbolt writes from a spec must dump (through Go) to exactly what the model predicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireGoTools } from '../support/go-tools.ts';
import { Rng } from '../support/rng.ts';
import { Model, generate, hexOf, type Op } from '../support/workload.ts';

test('Go writer + Go dumper agree with the model (random nested workload)', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-gotools-'));
  try {
    const txs = generate(new Rng(42), { txs: 30, maxOps: 30 });
    const extra: Op[] = [
      { op: 'createBucket', path: [], name: hexOf('fill') },
      { op: 'fill', path: [hexOf('fill')], prefix: hexOf('p'), start: 0, count: 2000, valueLen: 20, seed: 3 },
      { op: 'unfill', path: [hexOf('fill')], prefix: hexOf('p'), start: 100, count: 50, valueLen: 0, seed: 0 },
      { op: 'setSequence', path: [hexOf('fill')], n: '18446744073709551615' },
    ];
    txs.push(extra);
    const path = join(dir, 'go.db');
    go.write(path, { txs });
    const d = go.dump(path);
    assert.deepEqual(d.problems, []);
    assert.equal(d.pageSize, 4096);
    const m = new Model();
    for (const tx of txs) for (const op of tx) m.apply(op);
    assert.deepEqual(d.buckets, m.dump());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Go dumper reports a file it cannot open as an error, not as content', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  assert.throws(() => go.dump('/nonexistent/boltkv.db'), /boltdump/);
});
