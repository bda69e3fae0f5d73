/**
 * The one contract every `KV` implementation keeps: the in-process store, connect() to a real etcd
 * 3.4, connect() to boltkv serve. Each implementation's test file calls `kvContract` with a factory;
 * the assertions below are the answers, so passing everywhere means the same answers everywhere.
 * Tests share one KV per file, so each works under its own key prefix and reads revisions relative
 * to the revision it starts at.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KV, WatchResponse, WatchStream } from '../../src/api/kv.ts';

export interface ContractTarget {
  kv: KV;
  /** Releases what the factory started (servers, temp dirs) after kv.close(). */
  dispose(): Promise<void>;
}

const txt = (b: Uint8Array): string => Buffer.from(b).toString();
const keysOf = (kvs: { key: Uint8Array }[]): string[] => kvs.map((k) => txt(k.key));

/** Responses until `n` events have arrived, or until one ends the watch. */
async function take(it: AsyncIterable<WatchResponse>, n: number, ms = 10_000): Promise<WatchResponse[]> {
  const out: WatchResponse[] = [];
  let events = 0;
  const iter = it[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (events < n) {
    const r = await Promise.race([
      iter.next(),
      new Promise<never>((_, rej) =>
        setTimeout(
          () => rej(new Error(`timed out after ${events} of ${n} events`)),
          Math.max(1, deadline - Date.now()),
        ).unref(),
      ),
    ]);
    if (r.done === true) break;
    out.push(r.value);
    events += r.value.events.length;
    if (r.value.canceled === true) break;
  }
  return out;
}

async function nextResponse(iter: AsyncIterator<WatchResponse>, ms = 10_000): Promise<WatchResponse> {
  const r = await Promise.race([
    iter.next(),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no watch response in time')), ms).unref()),
  ]);
  assert.equal(r.done, false, 'the watch ended early');
  return r.value as WatchResponse;
}

function code(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

export function kvContract(name: string, factory: () => Promise<ContractTarget | undefined>): void {
  describe(`KV contract: ${name}`, () => {
    let target: ContractTarget | undefined;
    let kv: KV;
    before(async () => {
      target = await factory();
      if (target !== undefined) kv = target.kv;
    });
    after(async () => {
      if (target === undefined) return;
      await target.kv.close();
      await target.dispose();
    });
    /** The factory may decline (tool missing, skip announced by it). */
    const t = (title: string, fn: () => Promise<void>): void => {
      it(title, async (ctx) => {
        if (target === undefined) {
          ctx.skip('implementation not available');
          return;
        }
        await fn();
      });
    };
    const rev = async (): Promise<number> => (await kv.range({ key: 'contract-rev-probe' })).header.revision;

    t('put then range: revisions, versions, values', async () => {
      const base = await rev();
      const p1 = await kv.put({ key: 'basic/a', value: '1' });
      assert.equal(p1.header.revision, base + 1);
      assert.equal(p1.prevKv, undefined);
      const p2 = await kv.put({ key: 'basic/a', value: '2', prevKv: true });
      assert.equal(p2.header.revision, base + 2);
      assert.equal(txt(p2.prevKv!.value), '1');
      assert.equal(p2.prevKv!.modRevision, base + 1);
      const r = await kv.range({ key: 'basic/a' });
      assert.equal(r.header.revision, base + 2);
      assert.equal(r.count, 1);
      assert.equal(r.more, false);
      assert.deepEqual(
        r.kvs.map((x) => ({
          key: txt(x.key),
          value: txt(x.value),
          c: x.createRevision,
          m: x.modRevision,
          v: x.version,
          lease: x.lease,
        })),
        [{ key: 'basic/a', value: '2', c: base + 1, m: base + 2, v: 2, lease: 0n }],
      );
      const old = await kv.range({ key: 'basic/a', revision: base + 1 });
      assert.equal(txt(old.kvs[0]!.value), '1');
      const none = await kv.range({ key: 'basic/missing' });
      assert.deepEqual([none.kvs.length, none.count, none.more], [0, 0, false]);
    });

    t('range options: prefix, limit, sort, keysOnly, countOnly, mod revision filters', async () => {
      const base = await rev();
      for (const k of ['c', 'a', 'b', 'd']) await kv.put({ key: `opts/${k}`, value: `v-${k}` });
      const all = await kv.get('opts/', { prefix: true });
      assert.deepEqual(keysOf(all.kvs), ['opts/a', 'opts/b', 'opts/c', 'opts/d']);
      const lim = await kv.get('opts/', { prefix: true, limit: 2 });
      assert.deepEqual([keysOf(lim.kvs), lim.more, lim.count], [['opts/a', 'opts/b'], true, 4]);
      const desc = await kv.get('opts/', { prefix: true, sortOrder: 'DESCEND', sortTarget: 'MOD', limit: 1 });
      assert.deepEqual(keysOf(desc.kvs), ['opts/d']);
      const ko = await kv.get('opts/a', { keysOnly: true });
      assert.equal(ko.kvs[0]!.value.length, 0);
      const co = await kv.get('opts/', { prefix: true, countOnly: true });
      assert.deepEqual([co.kvs.length, co.count], [0, 4]);
      const mod = await kv.get('opts/', { prefix: true, minModRevision: base + 3 });
      assert.deepEqual(keysOf(mod.kvs), ['opts/b', 'opts/d']);
      const from = await kv.range({ key: 'opts/c', rangeEnd: '\0' });
      assert.ok(keysOf(from.kvs).slice(0, 2).join() === 'opts/c,opts/d');
    });

    t('deleteRange: counts, prevKvs, a missing key', async () => {
      const base = await rev();
      await kv.put({ key: 'del/a', value: '1' });
      await kv.put({ key: 'del/b', value: '2' });
      const d = await kv.delete('del/', { prefix: true, prevKv: true });
      assert.equal(d.header.revision, base + 3);
      assert.equal(d.deleted, 2);
      assert.deepEqual(
        d.prevKvs.map((x) => txt(x.value)),
        ['1', '2'],
      );
      const miss = await kv.deleteRange({ key: 'del/none' });
      assert.deepEqual([miss.deleted, miss.header.revision], [0, base + 3]);
    });

    t('txn: compare, success and failure branches, nested txn, one revision', async () => {
      const base = await rev();
      await kv.put({ key: 'txn/a', value: 'x' });
      await kv.put({ key: 'txn/c', value: 'gone soon' });
      const ok = await kv.txn({
        compare: [{ key: 'txn/a', target: 'VALUE', result: 'EQUAL', value: 'x' }],
        success: [
          { requestPut: { key: 'txn/a', value: 'y' } },
          { requestPut: { key: 'txn/b', value: 'z' } },
          { requestRange: { key: 'txn/', rangeEnd: 'txn0' } },
          {
            requestTxn: {
              compare: [{ key: 'txn/c', target: 'VERSION', result: 'GREATER', version: 0 }],
              success: [{ requestDeleteRange: { key: 'txn/c' } }],
            },
          },
        ],
        failure: [{ requestRange: { key: 'txn/a' } }],
      });
      assert.equal(ok.succeeded, true);
      assert.equal(ok.header.revision, base + 3);
      assert.equal(ok.responses.length, 4);
      const rr = ok.responses[2]!;
      assert.ok('responseRange' in rr);
      assert.deepEqual(keysOf(rr.responseRange.kvs), ['txn/a', 'txn/b', 'txn/c']);
      const nested = ok.responses[3]!;
      assert.ok('responseTxn' in nested);
      assert.equal(nested.responseTxn.succeeded, true);
      const inner = nested.responseTxn.responses[0]!;
      assert.ok('responseDeleteRange' in inner);
      assert.equal(inner.responseDeleteRange.deleted, 1);
      const no = await kv.txn({
        compare: [{ key: 'txn/a', target: 'MOD', result: 'LESS', modRevision: base + 1 }],
        success: [{ requestPut: { key: 'txn/a', value: 'never' } }],
        failure: [{ requestRange: { key: 'txn/a' } }],
      });
      assert.equal(no.succeeded, false);
      assert.equal(no.header.revision, base + 3);
      const fr = no.responses[0]!;
      assert.ok('responseRange' in fr);
      assert.equal(txt(fr.responseRange.kvs[0]!.value), 'y');
    });

    t('etcd errors come back with the store codes', async () => {
      const cur = await rev();
      await assert.rejects(kv.put({ key: '', value: 'x' }), (e) => code(e) === 'ERR_EMPTY_KEY');
      await assert.rejects(kv.range({ key: 'a', revision: cur + 1000 }), (e) => code(e) === 'ERR_FUTURE_REV');
      await assert.rejects(
        kv.txn({ success: [{ requestPut: { key: 'dup', value: '1' } }, { requestPut: { key: 'dup', value: '2' } }] }),
        (e) => code(e) === 'ERR_DUPLICATE_KEY',
      );
      await assert.rejects(
        kv.put({ key: 'err/l', value: 'x', lease: 123456789n }),
        (e) => code(e) === 'ERR_LEASE_NOT_FOUND',
      );
      await assert.rejects(kv.leaseRevoke({ ID: 123456789n }), (e) => code(e) === 'ERR_LEASE_NOT_FOUND');
      await assert.rejects(
        kv.put({ key: 'err/v', value: 'x', ignoreValue: true }),
        (e) => code(e) === 'ERR_VALUE_PROVIDED',
      );
      await assert.rejects(kv.put({ key: 'err/missing', ignoreValue: true }), (e) => code(e) === 'ERR_KEY_NOT_FOUND');
      // Nothing above changed the store.
      assert.equal(await rev(), cur);
    });

    t('leases: grant, attach, time to live, list, revoke deletes the keys', async () => {
      const g = await kv.leaseGrant({ TTL: 60 });
      assert.equal(typeof g.ID, 'bigint');
      assert.ok(g.ID > 0n);
      assert.equal(g.TTL, 60);
      await kv.put({ key: 'lease/a', value: '1', lease: g.ID });
      await kv.put({ key: 'lease/b', value: '2', lease: g.ID });
      const r = await kv.range({ key: 'lease/a' });
      assert.equal(r.kvs[0]!.lease, g.ID);
      const ttl = await kv.leaseTimeToLive({ ID: g.ID, keys: true });
      assert.equal(ttl.ID, g.ID);
      assert.equal(ttl.grantedTTL, 60);
      assert.ok(ttl.TTL > 50 && ttl.TTL <= 60, `TTL ${ttl.TTL}`);
      assert.deepEqual(ttl.keys.map(txt).sort(), ['lease/a', 'lease/b']);
      const ka = await kv.leaseKeepAlive({ ID: g.ID });
      assert.deepEqual([ka.ID, ka.TTL], [g.ID, 60]);
      assert.ok((await kv.leaseLeases()).leases.some((l) => l.ID === g.ID));
      const before = await rev();
      const rv = await kv.leaseRevoke({ ID: g.ID });
      assert.equal(rv.header.revision, before + 1);
      assert.equal((await kv.get('lease/', { prefix: true })).count, 0);
      assert.equal((await kv.leaseTimeToLive({ ID: g.ID })).TTL, -1);
    });

    t('lease IDs are int64, exact above 2^53', async () => {
      const id = (1n << 62n) + 12345n;
      const g = await kv.leaseGrant({ TTL: 60, ID: id });
      assert.equal(g.ID, id);
      await kv.put({ key: 'bigid/a', value: '1', lease: id });
      assert.equal((await kv.range({ key: 'bigid/a' })).kvs[0]!.lease, id);
      assert.equal((await kv.leaseTimeToLive({ ID: id.toString() })).ID, id);
      await assert.rejects(kv.leaseGrant({ TTL: 60, ID: id }), (e) => code(e) === 'ERR_LEASE_EXISTS');
      await kv.leaseRevoke({ ID: id });
    });

    t('watch: history then live events, prevKv, filters', async () => {
      const base = await rev();
      await kv.put({ key: 'w/a', value: '1' });
      await kv.put({ key: 'w/a', value: '2' });
      const ac = new AbortController();
      const w = kv.watch({ key: 'w/', rangeEnd: 'w0', startRevision: base + 1, prevKv: true, signal: ac.signal });
      const np = kv.watch({ key: 'w/', rangeEnd: 'w0', startRevision: base + 1, filters: ['NOPUT'] });
      const hist = await take(w, 2);
      assert.deepEqual(
        hist.flatMap((r) => r.events.map((e) => [e.type, txt(e.kv.value), e.kv.modRevision])),
        [
          ['PUT', '1', base + 1],
          ['PUT', '2', base + 2],
        ],
      );
      assert.equal(hist.flatMap((r) => r.events)[1]!.prevKv?.modRevision, base + 1);
      await kv.delete('w/a');
      const live = await take(w, 1);
      const ev = live.flatMap((r) => r.events);
      assert.deepEqual(
        ev.map((e) => [e.type, txt(e.kv.key), e.kv.modRevision, e.kv.version]),
        [['DELETE', 'w/a', base + 3, 0]],
      );
      assert.equal(txt(ev[0]!.prevKv!.value), '2');
      assert.ok(live.every((r) => r.watchId === undefined));
      const del = await take(np, 1);
      assert.deepEqual(
        del.flatMap((r) => r.events.map((e) => e.type)),
        ['DELETE'],
      );
      np.cancel();
      assert.equal(np.canceled, true);
      ac.abort();
      const iter = w[Symbol.asyncIterator]();
      assert.equal((await iter.next()).done, true);
      assert.equal(w.canceled, true);
    });

    t('watchStream: ids, tagged responses, cancel answer, progress', async () => {
      const base = await rev();
      const s: WatchStream = kv.watchStream();
      const a = s.create({ key: 'ws/a' });
      const b = s.create({ key: 'ws/b', startRevision: base + 1 });
      assert.deepEqual([a, b], [0, 1]);
      const iter = s[Symbol.asyncIterator]();
      // Let both watches reach the server before writing.
      s.requestProgress();
      const prog = await nextResponse(iter);
      assert.deepEqual([prog.watchId, prog.events.length, prog.header.revision], [-1, 0, base]);
      await kv.put({ key: 'ws/a', value: '1' });
      await kv.put({ key: 'ws/b', value: '2' });
      const seen: [number | undefined, string][] = [];
      while (seen.length < 2) {
        const r = await nextResponse(iter);
        for (const e of r.events) seen.push([r.watchId, txt(e.kv.key)]);
      }
      assert.deepEqual(seen.sort(), [
        [0, 'ws/a'],
        [1, 'ws/b'],
      ]);
      s.cancel(a);
      const c = await nextResponse(iter);
      assert.deepEqual([c.watchId, c.canceled, c.events.length], [a, true, 0]);
      s.close();
      assert.equal(s.closed, true);
      assert.equal((await iter.next()).done, true);
    });

    t('watchStream: chosen ids, refusals thrown, a compacted watch frees its id', async () => {
      await kv.put({ key: 'wsc/a', value: '1' });
      const old = await rev();
      await kv.put({ key: 'wsc/a', value: '2' });
      const s = kv.watchStream();
      const iter = s[Symbol.asyncIterator]();
      assert.equal(s.create({ key: 'wsc/a', watchId: 7 }), 7);
      assert.throws(
        () => s.create({ key: 'wsc/b', watchId: 7 }),
        (e) => code(e) === 'ERR_DUPLICATE_WATCH_ID',
      );
      assert.throws(
        () => s.create({ key: 'wsc/z', rangeEnd: 'wsc/a' }),
        (e) => code(e) === 'ERR_EMPTY_WATCH_RANGE',
      );
      const cur = await rev();
      await kv.compact({ revision: cur });
      assert.equal(s.create({ key: 'wsc/a', startRevision: old }), 0);
      const gone = await nextResponse(iter);
      assert.deepEqual(
        [gone.watchId, gone.canceled, gone.compactRevision, gone.header.revision, gone.created],
        [0, true, cur, 0, undefined],
      );
      // The compacted watch's id is free again.
      assert.equal(s.create({ key: 'wsc/a', watchId: 3 }), 3);
      await kv.put({ key: 'wsc/a', value: '3' });
      const ev = await nextResponse(iter);
      assert.deepEqual(
        ev.events.map((e) => txt(e.kv.value)),
        ['3'],
      );
      assert.ok(ev.watchId === 7 || ev.watchId === 3);
      s.close();
    });

    t('compaction: old revisions refused, a compacted watch start is canceled', async () => {
      await kv.put({ key: 'cmp/a', value: '1' });
      const mid = await rev();
      await kv.put({ key: 'cmp/a', value: '2' });
      const cur = await rev();
      await kv.compact({ revision: cur });
      await assert.rejects(kv.range({ key: 'cmp/a', revision: mid }), (e) => code(e) === 'ERR_COMPACTED');
      assert.equal(txt((await kv.range({ key: 'cmp/a', revision: cur })).kvs[0]!.value), '2');
      await assert.rejects(kv.compact({ revision: mid }), (e) => code(e) === 'ERR_COMPACTED');
      const w = kv.watch({ key: 'cmp/a', startRevision: mid });
      const rs = await take(w, 1);
      const last = rs[rs.length - 1]!;
      assert.deepEqual([last.canceled, last.compactRevision, last.events.length], [true, cur, 0]);
      assert.equal(w.canceled, true);
    });

    t('status answers the version and sizes', async () => {
      const st = await kv.status();
      assert.match(st.version, /^3\.\d+\.\d+/);
      assert.ok(st.dbSize > 0 && st.dbSizeInUse > 0 && st.dbSizeInUse <= st.dbSize);
      assert.equal(st.header.revision, await rev());
    });

    t('shortcuts: set, get, delete', async () => {
      await kv.set('sc/a', '1');
      await kv.set('sc/b', '2', { prevKv: true });
      assert.deepEqual(keysOf((await kv.get('sc/', { prefix: true })).kvs), ['sc/a', 'sc/b']);
      assert.equal((await kv.get('sc/b', { fromKey: true, countOnly: true })).count >= 1, true);
      assert.equal((await kv.delete('sc/', { prefix: true })).deleted, 2);
    });
  });
}
