/**
 * A watcher whose consumer reads nothing while many revisions commit must not make the hub buffer
 * them: it is parked after `maxBufferedEvents` and later caught up from history. Heap growth is
 * measured around the writes (with forced GC) against a stated bound; then every event must
 * arrive exactly once and in order, or a compacted cancel if the history went away meanwhile.
 * 1M events with BOLTKV_STRESS=1, 200k by default.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WatchHub } from '../../src/watch/hub.ts';
import { SyntheticSource } from './support/synthetic-source.ts';
import { withTimeout } from './support/helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const N = process.env.BOLTKV_STRESS === '1' ? 1_000_000 : 200_000;
/** The stated bound: the hub holds at most its 1024-event buffers per watcher, far below N events. */
const HEAP_BOUND = 8 * 1024 * 1024;

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('slow consumer', () => {
  it(`an idle watcher over ${N} events keeps heap growth under ${HEAP_BOUND >> 20} MiB, then gets every event`, {
    timeout: 120_000,
  }, async () => {
    const src = new SyntheticSource();
    const hub = new WatchHub(src, { maxBufferedEvents: 1024, catchUpRevisions: 1024 });
    const w = hub.watch({ key: 'k', rangeEnd: 'l' });
    const idleSingle = hub.watch({ key: 'k7' });
    const before = heap();
    src.write(N);
    const grown = heap() - before;
    console.log(`heap growth with idle watchers over ${N} events: ${(grown / 1048576).toFixed(2)} MiB`);
    assert.ok(grown < HEAP_BOUND, `heap grew ${grown} bytes`);
    assert.equal(hub.stats().unsynced, 2, 'both idle watchers parked');

    let expect = 2;
    for await (const r of w) {
      for (const e of r.events) {
        assert.equal(e.kv.modRevision, expect, 'every revision once, in order');
        expect++;
      }
      if (expect === N + 2) break;
    }
    assert.equal(expect, N + 2);
    let single = 0;
    let last = 0;
    for await (const r of idleSingle) {
      for (const e of r.events) {
        assert.ok(e.kv.modRevision > last);
        last = e.kv.modRevision;
        single++;
      }
      if (last === N + 1 - ((N + 1 - 7) % 100)) break;
    }
    assert.equal(single, Math.floor((N + 1 - 7) / 100) + 1);
    hub.close();
  });

  it('a parked watcher whose history was compacted gets the buffered events, then a compacted cancel', async () => {
    const src = new SyntheticSource();
    const hub = new WatchHub(src, { maxBufferedEvents: 100 });
    const w = hub.watch({ key: 'k', rangeEnd: 'l' });
    src.write(10_000);
    src.compact(5_000);
    let events = 0;
    let final: { compactRevision?: number; canceled?: boolean } | undefined;
    const it = w[Symbol.asyncIterator]();
    for (;;) {
      const r = await withTimeout(it.next(), 2000, 'response');
      if (r.done === true) break;
      events += r.value.events.length;
      if (r.value.canceled === true) final = r.value;
    }
    assert.equal(events, 100, 'only the buffer, then the cancel');
    assert.deepEqual(final && { c: final.compactRevision, x: final.canceled }, { c: 5_000, x: true });
    hub.close();
  });
});
