/**
 * Differential test against a real etcd 3.4: the same writes (puts, deletes, range deletes, txns,
 * a compaction) go to etcd and to the fake source under a WatchHub; equivalent watches (live and
 * historical, ranges, filters, prevKv, a compacted start) must see the same events, and neither
 * side may split a revision across responses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WatchHub } from '../../src/watch/hub.ts';
import type { WatchFilter, WatchRequest, WatchResponse } from '../../src/watch/types.ts';
import { requireEtcd, startEtcd, type EtcdServer, type Wire } from '../support/etcd.ts';
import { FakeSource, type FakeOp } from './support/fake-source.ts';
import { readUntil } from './support/helpers.ts';

interface Spec {
  key: string;
  rangeEnd?: string;
  prevKv?: boolean;
  filters?: WatchFilter[];
}

const SPECS: Spec[] = [
  { key: 'a' },
  { key: 'a', rangeEnd: 'b' },
  { key: 'b', rangeEnd: '\0' },
  { key: '\0', rangeEnd: '\0', prevKv: true },
  { key: 'ab', rangeEnd: 'b' },
  { key: 'a', rangeEnd: 'b', filters: ['NOPUT'], prevKv: true },
  { key: '\0', rangeEnd: '\0', filters: ['NODELETE'] },
  { key: 'ab', prevKv: true },
];
const KEYS = ['a', 'ab', 'abc', 'b', 'ba', 'c'];

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function workload(seed: number, n: number): FakeOp[][] {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: FakeOp[][] = [];
  for (let i = 0; i < n; i++) {
    if (i === n >> 2) {
      // etcd accepts a put plus a delete of the whole "\0" range in one txn; prevKv of both events
      // is the value at revision - 1.
      out.push([{ op: 'put', key: 'ab', value: `q${i}` }, { op: 'delete', key: '\0', rangeEnd: '\0' }]);
      continue;
    }
    const x = r();
    if (x < 0.55) out.push([{ op: 'put', key: pick(KEYS), value: `v${i}` }]);
    else if (x < 0.7) out.push([{ op: 'delete', key: pick(KEYS) }]);
    else if (x < 0.8) {
      const a = pick(KEYS);
      out.push([{ op: 'delete', key: a, rangeEnd: a === 'c' ? '\0' : pick(KEYS.filter((k) => k > a).concat(['d'])) }]);
    } else {
      // Txn: distinct keys, some puts then a delete (etcd rejects duplicate keys in one txn).
      const keys = [...KEYS].sort(() => r() - 0.5).slice(0, 2 + Math.floor(r() * 3));
      out.push(keys.map((k, j) => (j === keys.length - 1 && r() < 0.5 ? { op: 'delete', key: k } : { op: 'put', key: k, value: `t${i}.${j}` })));
    }
  }
  return out;
}

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

async function applyEtcd(e: EtcdServer, ops: FakeOp[]): Promise<void> {
  const g = e.gateway;
  const wire = (o: FakeOp): unknown =>
    o.op === 'put'
      ? { requestPut: { key: b(o.key), value: b(o.value) } }
      : { requestDeleteRange: { key: b(o.key), rangeEnd: o.rangeEnd === undefined ? undefined : b(o.rangeEnd) } };
  if (ops.length === 1) {
    const o = ops[0]!;
    if (o.op === 'put') await g.put({ key: b(o.key), value: b(o.value) });
    else await g.deleteRange({ key: b(o.key), rangeEnd: o.rangeEnd === undefined ? undefined : b(o.rangeEnd) });
  } else {
    await g.txn({ success: ops.map(wire) });
  }
}

/** One line per event, in the canonical form both sides are compared in. */
function norm(ev: { type?: string; kv?: Record<string, unknown>; prevKv?: Record<string, unknown> }): string {
  const kv = (k: Record<string, unknown> | undefined): string => {
    if (k === undefined) return '-';
    const s = (x: unknown): string => (x instanceof Uint8Array ? Buffer.from(x).toString('latin1') : '');
    const n = (x: unknown): number => (typeof x === 'number' ? x : 0);
    return `${s(k.key)} c${n(k.createRevision)} m${n(k.modRevision)} v${n(k.version)} =${s(k.value)} l${n(k.lease)}`;
  };
  return `${ev.type === 'DELETE' ? 'DELETE' : 'PUT'} [${kv(ev.kv)}] prev[${kv(ev.prevKv)}]`;
}

interface Seen {
  events: string[];
  /** Revision groups per response, to check atomicity. */
  groups: number[][];
  compactRevision?: number;
}

function fromHub(rs: WatchResponse[]): Seen {
  const seen: Seen = { events: [], groups: [] };
  for (const r of rs) {
    if (r.compactRevision !== undefined) seen.compactRevision = r.compactRevision;
    if (r.events.length === 0) continue;
    seen.events.push(...r.events.map((e) => norm(e as never)));
    seen.groups.push(r.events.map((e) => e.kv.modRevision));
  }
  return seen;
}

class EtcdWatch {
  readonly seen: Seen = { events: [], groups: [] };
  created = false;
  readonly close: () => void;
  constructor(e: EtcdServer, spec: Spec, startRevision: number) {
    this.close = e.gateway.watch(
      {
        createRequest: {
          key: b(spec.key),
          rangeEnd: spec.rangeEnd === undefined ? undefined : b(spec.rangeEnd),
          startRevision: startRevision === 0 ? undefined : startRevision,
          prevKv: spec.prevKv,
          filters: spec.filters,
        },
      },
      (m: Wire) => {
        const msg = m as { created?: boolean; compactRevision?: number; events?: Record<string, unknown>[] };
        if (msg.created === true) this.created = true;
        if (msg.compactRevision !== undefined) this.seen.compactRevision = msg.compactRevision;
        if (msg.events !== undefined && msg.events.length > 0) {
          this.seen.events.push(...msg.events.map((x) => norm(x as never)));
          this.seen.groups.push(msg.events.map((x) => (x.kv as { modRevision: number }).modRevision));
        }
      },
    );
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for etcd to catch up to `n` events; a shortfall then shows up as a readable diff. */
async function settle(seen: Seen, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while (seen.events.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
}

function assertAtomic(groups: number[][], who: string): void {
  const where = new Map<number, number>();
  groups.forEach((g, i) => {
    for (const rev of g) {
      const prev = where.get(rev);
      assert.ok(prev === undefined || prev === i, `${who}: revision ${rev} split across responses`);
      where.set(rev, i);
    }
  });
}

async function drainHub(hub: WatchHub, src: FakeSource, req: WatchRequest): Promise<Seen> {
  const w = hub.watch(req);
  w.requestProgress();
  const cur = src.currentRevision();
  const { responses } = await readUntil(
    w[Symbol.asyncIterator](),
    (r) => r.canceled === true || (r.events.length === 0 && r.header.revision === cur),
  );
  w.cancel();
  return fromHub(responses);
}

describe('watch vs etcd 3.4', () => {
  it('same writes, equivalent watches: the same events', { timeout: 120_000 }, async (t) => {
    if (!requireEtcd(t)) return;
    const etcd = await startEtcd();
    try {
      const src = new FakeSource();
      const hub = new WatchHub(src, { maxBufferedEvents: 16, catchUpRevisions: 7 });
      // Live watches, created before any write.
      const live = SPECS.map((spec) => {
        const req: WatchRequest = { key: spec.key, rangeEnd: spec.rangeEnd, prevKv: spec.prevKv, filters: spec.filters };
        const w = hub.watch(req);
        // A consumer that keeps reading, as etcd's client does: slow-consumer parking plus the
        // compaction below would otherwise (legitimately) cancel it.
        const got: WatchResponse[] = [];
        const done = (async () => {
          for await (const r of w) got.push(r);
        })();
        return { spec, w, got, done, etcd: new EtcdWatch(etcd, spec, 0) };
      });
      await until(() => live.every((l) => l.etcd.created), 10_000, 'etcd watches created');

      const ops = workload(0x5eed, 80);
      let compactAt = 0;
      for (let i = 0; i < ops.length; i++) {
        await applyEtcd(etcd, ops[i]!);
        src.txn(ops[i]!);
        if (i === 50) {
          compactAt = src.currentRevision() - 10;
          await etcd.gateway.compact({ revision: compactAt });
          src.compact(compactAt);
        }
      }
      const cur = src.currentRevision();
      const head = (await etcd.gateway.range({ key: b('a') })) as { header: { revision: number } };
      assert.equal(head.header.revision, cur, 'both stores ended at the same revision');

      for (const l of live) {
        l.w.requestProgress();
        await until(() => l.got.some((r) => r.events.length === 0 && r.header.revision === cur), 5000, 'bookmark');
        assert.equal(l.got.some((r) => r.canceled === true), false);
        const ours = fromHub(l.got);
        await settle(l.etcd.seen, ours.events.length);
        assert.deepEqual(ours.events, l.etcd.seen.events, `live ${JSON.stringify(l.spec)}`);
        assert.ok(ours.events.length > 0, 'the workload touched every watched range');
        assertAtomic(ours.groups, 'boltkv');
        assertAtomic(l.etcd.seen.groups, 'etcd');
        l.etcd.close();
        l.w.cancel();
        await l.done;
      }

      // Historical watches: from the compact revision (+1 with prevKv: etcd cannot give prevKv
      // for events at exactly the compact revision), from further on, and from below it.
      for (const spec of SPECS) {
        for (const start of [compactAt + (spec.prevKv === true ? 1 : 0), compactAt + 9, compactAt - 3]) {
          const req: WatchRequest = { key: spec.key, rangeEnd: spec.rangeEnd, prevKv: spec.prevKv, filters: spec.filters, startRevision: start };
          const ours = await drainHub(hub, src, req);
          const ew = new EtcdWatch(etcd, spec, start);
          if (ours.compactRevision !== undefined) {
            await until(() => ew.seen.compactRevision !== undefined, 10_000, 'etcd compacted response');
            assert.equal(ours.compactRevision, ew.seen.compactRevision);
            assert.equal(ours.events.length, 0);
            assert.equal(start < compactAt, true);
          } else {
            // etcd 3.4.23 drops a tombstone lying exactly at the compact revision from its backend
            // (etcd-io/etcd#18089, fixed upstream by #18274), so a watch from there misses that
            // DELETE. boltkv keeps it, per the fixed semantics; compare without those events.
            const expected =
              start === compactAt ? ours.events.filter((e) => !(e.startsWith('DELETE') && e.includes(` m${compactAt} `))) : ours.events;
            await settle(ew.seen, expected.length);
            assert.deepEqual(expected, ew.seen.events, `from ${start}: ${JSON.stringify(spec)}`);
            assertAtomic(ew.seen.groups, 'etcd');
            assertAtomic(ours.groups, 'boltkv');
          }
          ew.close();
        }
      }
      hub.close();
    } finally {
      await etcd.stop();
    }
  });
});
