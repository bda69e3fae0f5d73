/**
 * Watch through the package API (openStore on a bolt file): the README's resume-after-restart
 * example, lease expiry as one revision of DELETEs, and a watch stream.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import type { WatchResponse } from '../../src/watch/types.ts';
import { readUntil, str, take } from './support/helpers.ts';

function tempDb(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-watch-'));
  return { path: join(dir, 'data.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('watch via openStore', () => {
  it('resumes after a restart from the last seen revision + 1 (README example)', async () => {
    const db = tempDb();
    try {
      let kv = await openStore(db.path);
      const seen: string[] = [];
      let lastRevision = 0;
      const w = kv.watch({ key: 'config/', rangeEnd: 'config0' });
      await kv.set('config/a', '1');
      await kv.set('config/b', '2');
      for await (const resp of w) {
        for (const ev of resp.events) seen.push(`${ev.type} ${str(ev.kv.key)}=${str(ev.kv.value)}`);
        lastRevision = resp.header.revision;
        if (seen.length === 2) break; // breaking out cancels the watch
      }
      // Written while nobody watches, then the process goes away.
      await kv.set('config/a', '3');
      await kv.delete('config/b');
      await kv.close();

      kv = await openStore(db.path);
      const w2 = kv.watch({ key: 'config/', rangeEnd: 'config0', startRevision: lastRevision + 1 });
      await kv.set('config/c', '4');
      w2.requestProgress();
      const cur = kv.revision();
      const { responses } = await readUntil(
        w2[Symbol.asyncIterator](),
        (r) => r.events.length === 0 && r.header.revision === cur,
      );
      for (const r of responses)
        for (const ev of r.events) seen.push(`${ev.type} ${str(ev.kv.key)}=${str(ev.kv.value)}`);
      assert.deepEqual(seen, [
        'PUT config/a=1',
        'PUT config/b=2',
        'PUT config/a=3',
        'DELETE config/b=',
        'PUT config/c=4',
      ]);
      await kv.close();
    } finally {
      db.cleanup();
    }
  });

  it('an expired lease deletes its keys in one revision; a stream sees it as one response', async () => {
    const db = tempDb();
    let clock = 5_000_000;
    const kv = await openStore(db.path, { now: () => clock, leaseCheckIntervalMs: 0 });
    try {
      const { ID } = await kv.leaseGrant({ TTL: 3 });
      const stream = kv.watchStream();
      const id = stream.create({ key: 'lock/', rangeEnd: 'lock0', prevKv: true });
      for (let i = 0; i < 5; i++) await kv.set(`lock/${i}`, 'held', { lease: ID });
      const it = stream[Symbol.asyncIterator]();
      const puts: WatchResponse[] = await take(it, 5);
      assert.ok(puts.every((r) => r.watchId === id && r.events.length === 1));
      clock += 10_000;
      // Expiry runs before the next write (and on the lease timer, disabled here).
      await kv.set('unrelated', 'x');
      const [r] = await take(it, 1);
      assert.equal(r!.watchId, id);
      assert.equal(r!.events.length, 5);
      const rev = r!.events[0]!.kv.modRevision;
      assert.ok(
        r!.events.every((e) => e.type === 'DELETE' && e.kv.modRevision === rev && str(e.prevKv!.value) === 'held'),
      );
      stream.close();
    } finally {
      await kv.close();
      db.cleanup();
    }
  });
});
