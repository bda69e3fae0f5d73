/**
 * SnapshotChunker against a simple model: for any image size and any way the store's stream splits
 * image + digest into pieces, the messages are the image cut at 32 KiB with remaining_bytes
 * counting down, then the digest alone; a stream of the wrong length is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Panic } from '../../src/errors.ts';
import { SNAPSHOT_CHUNK_BYTES, SnapshotChunker, type SnapshotMessage } from '../../src/server/snapshot-chunker.ts';

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    if (c > prev) out.push(bytes.subarray(prev, c));
    prev = Math.max(prev, c);
  }
  return out;
}

function model(image: Buffer, digest: Buffer): SnapshotMessage[] {
  const out: SnapshotMessage[] = [];
  for (let off = 0; off < image.length; off += SNAPSHOT_CHUNK_BYTES) {
    const blob = image.subarray(off, off + SNAPSHOT_CHUNK_BYTES);
    out.push({ remainingBytes: image.length - off - blob.length, blob });
  }
  out.push({ remainingBytes: 0, blob: digest });
  return out;
}

const norm = (ms: SnapshotMessage[]) =>
  ms.map((m) => ({ r: m.remainingBytes, b: Buffer.from(m.blob).toString('hex') }));

test('messages equal the model for any size and any split', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 * SNAPSHOT_CHUNK_BYTES + 100 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.integer({ min: 0, max: 255 }),
      (size, cuts, seed) => {
        const image = Buffer.alloc(size);
        for (let i = 0; i < size; i++) image[i] = (i * 31 + seed) & 0xff;
        const digest = Buffer.alloc(32, seed ^ 0x5a);
        const c = new SnapshotChunker(size);
        const got: SnapshotMessage[] = [];
        for (const piece of split(Buffer.concat([image, digest]), cuts)) got.push(...c.push(piece));
        got.push(...c.end());
        assert.deepEqual(norm(got), norm(model(image, digest)));
      },
    ),
    { numRuns: 200 },
  );
});

test('a stream shorter or longer than size + 32 is a Panic', () => {
  const short = new SnapshotChunker(100);
  short.push(Buffer.alloc(100 + 31));
  assert.throws(() => short.end(), Panic);
  const long = new SnapshotChunker(100);
  assert.throws(() => long.push(Buffer.alloc(100 + 33)), Panic);
  const early = new SnapshotChunker(SNAPSHOT_CHUNK_BYTES * 2);
  early.push(Buffer.alloc(SNAPSHOT_CHUNK_BYTES));
  assert.throws(() => early.end(), Panic);
});
