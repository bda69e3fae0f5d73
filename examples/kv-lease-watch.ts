/**
 * KV + lease + watch: etcd's v3 API in process, on a data file in a temp dir.
 *   node --import tsx --conditions=boltkv-source examples/kv-lease-watch.ts
 * A watcher follows the prefix `app/` while we put, compare-and-swap, attach keys to leases, revoke
 * one lease and let another expire; then it resumes from a saved revision after a reopen.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, prefixEnd, type WatchResponse } from 'boltkv';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-kv-example-'));
const file = path.join(dir, 'kv.db');
const text = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString() : '(none)');

// Short lease checks so the expiry below happens in about a second (etcd's minimum TTL is 2 s).
const kv = await openStore(file, { minLeaseTTL: 1, leaseCheckIntervalMs: 50 });

// Watch everything under app/, with the previous value of each key.
const seen: WatchResponse[] = [];
const watcher = kv.watch({ key: 'app/', rangeEnd: prefixEnd('app/'), prevKv: true });
let sessionExpired: () => void = () => {};
const expired = new Promise<void>((resolve) => {
  sessionExpired = resolve;
});
const following = (async () => {
  for await (const resp of watcher) {
    seen.push(resp);
    for (const ev of resp.events) {
      const prev = ev.prevKv ? ` (was ${text(ev.prevKv.value)})` : '';
      const value = ev.type === 'PUT' ? ` = ${text(ev.kv.value)}` : '';
      console.log(`  watch rev ${ev.kv.modRevision}: ${ev.type} ${text(ev.kv.key)}${value}${prev}`);
      if (ev.type === 'DELETE' && text(ev.kv.key) === 'app/session') sessionExpired();
    }
  }
})();

// Plain puts, then a compare-and-swap that only one of two writers can win.
await kv.put({ key: 'app/config', value: 'v1' });
const cas = (from: string, to: string) =>
  kv.txn({
    compare: [{ key: 'app/config', target: 'VALUE', result: 'EQUAL', value: from }],
    success: [{ requestPut: { key: 'app/config', value: to } }],
  });
const [first, second] = await Promise.all([cas('v1', 'v2'), cas('v1', 'v3')]);
console.log(`compare-and-swap: first ${first.succeeded ? 'won' : 'lost'}, second ${second.succeeded ? 'won' : 'lost'}`);

// A lease we revoke ourselves: its key goes with it.
const lock = await kv.leaseGrant({ TTL: 60 });
await kv.put({ key: 'app/lock', value: 'owner-1', lease: lock.ID });
const ttl = await kv.leaseTimeToLive({ ID: lock.ID, keys: true });
console.log(
  `lease ${lock.ID}: TTL ${ttl.TTL}s of ${ttl.grantedTTL}s, keys [${ttl.keys.map((k) => text(k)).join(', ')}]`,
);
await kv.leaseRevoke({ ID: lock.ID });

// A lease nobody keeps alive: it expires and the store deletes its key.
const session = await kv.leaseGrant({ TTL: 1 });
await kv.put({ key: 'app/session', value: 'alive', lease: session.ID });
const timeout = setTimeout(() => {
  console.error('the session lease did not expire within 10 s');
  process.exit(1);
}, 10_000);
await expired;
clearTimeout(timeout);
console.log(
  `lease ${session.ID} expired; app/session is ${(await kv.get('app/session')).kvs.length === 0 ? 'gone' : 'still there'}`,
);

// Save a bookmark, close, write more after a reopen, and resume the watch from the bookmark.
const bookmark = kv.revision();
watcher.cancel();
await following;
await kv.close();

const again = await openStore(file);
await again.put({ key: 'app/config', value: 'v4' });
const resumed = again.watch({ key: 'app/', rangeEnd: prefixEnd('app/'), startRevision: bookmark + 1 });
for await (const resp of resumed) {
  for (const ev of resp.events)
    console.log(`  resumed at rev ${ev.kv.modRevision}: ${ev.type} ${text(ev.kv.key)} = ${text(ev.kv.value)}`);
  if (resp.events.length > 0) break;
}
const all = await again.get('app/', { prefix: true });
console.log(
  `after reopen: ${all.kvs.map((k) => `${text(k.key)}=${text(k.value)}`).join(', ')} at revision ${all.header.revision}`,
);
console.log(`watch delivered ${seen.reduce((n, r) => n + r.events.length, 0)} events before the restart`);
await again.close();

fs.rmSync(dir, { recursive: true, force: true });
console.log('done');
