/**
 * Operating a file (issue 13): hot backup and copy-compaction throughput against a plain file copy
 * (the limit), and online defragmentation of a fragmented file while a writer commits — total time,
 * the longest commit latency the writer saw, writes completed during the run — beside a
 * stop-the-world defragmentation of the same file (what etcd does: its writers wait for the whole
 * copy, so its pause is the copy's duration).
 *
 * Run: node --import tsx --conditions=boltkv-source bench/tools.ts
 *      BENCH_SIZE_MB=1024 for the 1 GB figure (default 256), BENCH_QUICK=1 for a smoke run.
 */
import { copyFileSync, createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compact, open, type DB } from '../src/bolt/index.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

const quick = process.env.BENCH_QUICK === '1';
const SIZE_MB = quick ? 32 : Number(process.env.BENCH_SIZE_MB ?? 256);
const VALUE = 1000;

const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-tools-'));
const mb = (bytes: number): number => bytes / (1 << 20);

/** A file of about SIZE_MB of live data: keys in random order so pages are scattered. */
function build(path: string): DB {
  const db = open(path, { noSync: true });
  const n = Math.floor((SIZE_MB << 20) / (VALUE + 40));
  const value = Buffer.alloc(VALUE, 7);
  const perTx = 20_000;
  for (let start = 0; start < n; start += perTx) {
    db.update((tx) => {
      const b = tx.createBucketIfNotExists('data');
      for (let i = start; i < Math.min(n, start + perTx); i++) {
        const k = Buffer.alloc(8);
        k.writeUInt32BE((i * 2654435761) >>> 0, 0);
        k.writeUInt32BE(i, 4);
        b.put(k, value);
      }
    });
  }
  db.sync();
  return db;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

async function main(): Promise<void> {
  const src = join(dir, 'src.db');
  const db = build(src);
  const bytes = db.view((tx) => tx.size);
  const rows: Row[] = [];

  // The limit: copying the file.
  const [, copyMs] = await timed(() => copyFileSync(src, join(dir, 'copy.db')));
  const [, streamMs] = await timed(() => pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), createWriteStream(join(dir, 'stream.db'))));
  const [, backupMs] = await timed(() => db.backup(join(dir, 'backup.db')));
  const [, compactMs] = await timed(async () => {
    const dst = open(join(dir, 'compact.db'), { noSync: true });
    await compact(db, dst, { txMaxSize: 4 << 20 });
    dst.sync();
    dst.close();
  });
  for (const [op, ms] of [['fs.copyFile', copyMs], ['stream copy (1 MiB chunks)', streamMs], ['db.backup (hot, fsynced)', backupMs], ['compact (bbolt-style copy)', compactMs]] as const) {
    rows.push({ op, MB: Math.round(mb(bytes)), ms: Math.round(ms), 'MB/s': mb(bytes) / (ms / 1000), 'vs fs.copyFile': copyMs / ms });
  }
  printTable(`Backup and compaction of a ${Math.round(mb(bytes))} MB file (higher MB/s is better)`, rows);
  for (const f of ['copy.db', 'stream.db', 'backup.db', 'compact.db']) rmSync(join(dir, f), { force: true });

  // Fragment: delete three records in four, scattered over the key space.
  db.update((tx) => {
    const b = tx.bucket('data')!;
    const c = b.cursor();
    let i = 0;
    for (let e = c.first(); e; i++) {
      if (i % 4 !== 0) c.delete();
      e = c.next();
    }
  });
  const fragmented = db.view((tx) => tx.size);

  // Stop-the-world, as etcd does it: writers wait for a whole compaction into a new file.
  let stwSize = 0;
  const [, stwMs] = await timed(async () => {
    const dst = open(join(dir, 'stw.db'), { noSync: true });
    await compact(db, dst, { txMaxSize: 4 << 20 });
    dst.sync();
    stwSize = dst.view((tx) => tx.size);
    dst.close();
  });
  rmSync(join(dir, 'stw.db'));

  // Online: a writer commits small transactions all along.
  let stop = false;
  let writes = 0;
  let maxLatency = 0;
  const latencies: number[] = [];
  const writer = (async () => {
    let i = 0;
    while (!stop) {
      const t0 = performance.now();
      await db.updateAsync((tx) => {
        tx.bucket('data')!.put(`w${i++}`, 'x'.repeat(100));
      });
      const l = performance.now() - t0;
      latencies.push(l);
      maxLatency = Math.max(maxLatency, l);
      writes++;
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const before = { writes, max: maxLatency };
  writes = 0;
  maxLatency = 0;
  latencies.length = 0;
  const [r, totalMs] = await timed(() => db.defragment());
  const during = { writes, max: maxLatency, p99: percentile(latencies, 0.99) };
  stop = true;
  await writer;
  db.close();
  const defragRows: Row[] = [
    {
      method: 'boltkv db.defragment() (online)',
      'before MB': Math.round(mb(fragmented)),
      'after MB': mb(r.after),
      'total ms': Math.round(totalMs),
      'longest writer wait ms': during.max,
      'p99 commit ms': during.p99,
      'swap pause ms': r.pauseMs,
      'writes during': during.writes,
      'catch-up rounds': r.rounds,
    },
    {
      method: 'stop-the-world compact (etcd-style)',
      'before MB': Math.round(mb(fragmented)),
      'after MB': mb(stwSize),
      'total ms': Math.round(stwMs),
      'longest writer wait ms': stwMs,
      'p99 commit ms': null,
      'swap pause ms': stwMs,
      'writes during': 0,
      'catch-up rounds': null,
    },
  ];
  printTable(`Defragmentation of a fragmented file with a writer committing (baseline commit max ${before.max.toFixed(2)} ms)`, defragRows);
  const path = writeResults('tools', { sizeMB: SIZE_MB, copy: rows, defrag: defragRows, writerBaselineMaxMs: before.max });
  console.log(`\nresults: ${path}`);
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
