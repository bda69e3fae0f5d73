/**
 * The Backend contract, property-tested against a sorted-map model for both implementations:
 * forward/backward scans within [from, to) in byte order, early stop, reads of a write transaction
 * seeing its own writes, and a throwing write callback leaving nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Backend, BackendReader } from '../../src/mvcc/backend.ts';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';

const bytes = fc
  .uint8Array({ minLength: 1, maxLength: 3, max: 4 })
  .map((b) => b.map((x) => [0, 1, 0x61, 0xfe, 0xff][x]!));
type Op = { t: 'put'; k: Uint8Array; v: Uint8Array } | { t: 'del'; k: Uint8Array };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('put' as const), k: bytes, v: fc.uint8Array({ maxLength: 4 }) }),
  fc.record({ t: fc.constant('del' as const), k: bytes }),
);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function modelScan(m: Map<string, Uint8Array>, from: Uint8Array, to: Uint8Array | undefined): [string, string][] {
  return [...m.entries()]
    .map(([k, v]) => [Buffer.from(k, 'hex'), v] as const)
    .filter(([k]) => Buffer.compare(k, from) >= 0 && (to === undefined || Buffer.compare(k, to) < 0))
    .sort((a, b) => Buffer.compare(a[0], b[0]))
    .map(([k, v]) => [hex(k), hex(v)]);
}

function scanOf(
  r: BackendReader,
  from: Uint8Array,
  to: Uint8Array | undefined,
  reverse: boolean,
  stopAfter: number,
): [string, string][] {
  const out: [string, string][] = [];
  const visit = (k: Uint8Array, v: Uint8Array): boolean => {
    out.push([hex(k), hex(v)]);
    return out.length < stopAfter;
  };
  if (reverse) r.scanReverse('b', from, to, visit);
  else r.scan('b', from, to, visit);
  return out;
}

async function contract(make: () => Backend, cleanup: () => void): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { maxLength: 25 }),
      fc.array(opArb, { maxLength: 10 }),
      bytes,
      fc.option(bytes, { nil: undefined }),
      fc.integer({ min: 1, max: 30 }),
      async (base, staged, from, to, stopAfter) => {
        const b = make();
        try {
          const model = new Map<string, Uint8Array>();
          const apply = (m: Map<string, Uint8Array>, ops: Op[]): void => {
            for (const o of ops) {
              if (o.t === 'put') m.set(hex(o.k), o.v);
              else m.delete(hex(o.k));
            }
          };
          await b.update((w) => {
            for (const o of base) {
              if (o.t === 'put') w.put('b', o.k, o.v);
              else w.delete('b', o.k);
            }
          });
          apply(model, base);
          const check = (r: BackendReader, m: Map<string, Uint8Array>): void => {
            const want = modelScan(m, from, to);
            assert.deepEqual(scanOf(r, from, to, false, stopAfter), want.slice(0, stopAfter));
            assert.deepEqual(scanOf(r, from, to, true, stopAfter), [...want].reverse().slice(0, stopAfter));
            for (const [k, v] of m) assert.deepEqual(hex(r.get('b', Buffer.from(k, 'hex'))!), hex(v));
          };
          b.view((r) => check(r, model));
          // a write transaction reads its own writes
          const inTxn = new Map(model);
          apply(inTxn, staged);
          await b.update((w) => {
            for (const o of staged) {
              if (o.t === 'put') w.put('b', o.k, o.v);
              else w.delete('b', o.k);
            }
            check(w, inTxn);
          });
          b.view((r) => check(r, inTxn));
          // a throwing callback leaves nothing behind
          await assert.rejects(
            b.update((w) => {
              w.put('b', new Uint8Array([9, 9]), new Uint8Array([1]));
              throw new Error('boom');
            }),
          );
          b.view((r) => check(r, inTxn));
        } finally {
          await b.close();
          cleanup();
        }
      },
    ),
    { numRuns: 150 },
  );
}

test('memory backend honours the Backend contract', async () => {
  await contract(
    () => new MemoryBackend(),
    () => undefined,
  );
});

test('bolt backend honours the Backend contract', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-backend-'));
  let n = 0;
  try {
    await contract(
      () => BoltBackend.open(join(dir, `db${n++}`), { noSync: true }),
      () => undefined,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
