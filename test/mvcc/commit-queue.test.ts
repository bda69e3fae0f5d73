/**
 * The commit queue's not-yet-durable records: reads find each one by revision until its commit is
 * durable, and a revision written out of order (which the binary search could not find) is a Panic,
 * not a record silently missing from reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Panic } from '../../src/errors.ts';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { CommitQueue } from '../../src/mvcc/commit-queue.ts';

test('records are visible by revision until durable, then left to the backend', async () => {
  const q = new CommitQueue(new MemoryBackend(), () => {});
  const v = (n: number) => new Uint8Array([n]);
  q.putVisible(2, 0, v(1));
  q.putVisible(2, 1, v(2));
  q.putVisible(3, 0, v(3));
  assert.deepEqual(q.visible(2, 1), v(2));
  assert.deepEqual(q.visible(3, 0), v(3));
  assert.equal(q.visible(2, 2), undefined);
  assert.equal(q.visible(1, 0), undefined);
  await q.durable();
  assert.equal(q.visible(2, 0), undefined);
});

test('a revision written out of order is a Panic', () => {
  const q = new CommitQueue(new MemoryBackend(), () => {});
  q.putVisible(5, 1, new Uint8Array([1]));
  assert.throws(() => q.putVisible(5, 1, new Uint8Array([2])), Panic);
  assert.throws(() => q.putVisible(4, 9, new Uint8Array([2])), Panic);
  q.putVisible(5, 2, new Uint8Array([3]));
  assert.deepEqual(q.visible(5, 2), new Uint8Array([3]));
});
