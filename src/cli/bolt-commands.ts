/**
 * bbolt's file commands (check, info, stats, buckets, keys, get, compact) plus backup and defrag, on
 * a database file opened in this process; the page commands (pages, page, dump) are in
 * bolt-pages.ts, `bench` in bolt-bench.ts.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { syncDir } from '../bolt/backup.ts';
import type { Bucket, BucketStats } from '../bolt/bucket.ts';
import { compact } from '../bolt/compact.ts';
import { open } from '../bolt/db.ts';
import type { Tx } from '../bolt/tx.ts';
import { bool, num, str } from './args.ts';
import { bench } from './bolt-bench.ts';
import { formatFlag, lines, needPath, outFormat, withDB, withDBAsync } from './bolt-file.ts';
import { dump, page, pages } from './bolt-pages.ts';
import type { Command } from './command.ts';
import { CliError, usage } from './errors.ts';
import { formatBytes, json, parseKey, table, valueFormatOf } from './output.ts';
import { progressBar } from './progress.ts';

/** The bucket at a path of names, or a typed error naming the missing one. */
function bucketAt(tx: Tx, names: readonly Uint8Array[]): Bucket {
  let b: Bucket | undefined;
  for (const n of names) {
    b = b ? b.bucket(n) : tx.bucket(n);
    if (!b) throw new CliError('ERR_NOT_FOUND', `bucket not found: ${Buffer.from(n).toString()}`);
  }
  if (!b) throw usage('bucket required');
  return b;
}

const parseFormatFlag = {
  kind: 'string',
  default: 'ascii-encoded',
  help: 'how names and keys are given: ascii-encoded or hex',
} as const;

const info: Command = {
  name: 'info',
  summary: 'print basic info',
  usage: 'boltkv info PATH',
  flags: {},
  run(p, io) {
    const path = needPath(p);
    const r = withDB(path, (db) =>
      db.view((tx) => ({
        pageSize: db.pageSize,
        txid: tx.id,
        pgid: tx.meta.pgid,
        size: tx.size,
        fileSize: statSync(path).size,
      })),
    );
    const w = outFormat(p);
    if (w === 'json') io.out(`${json(r)}\n`);
    else if (w === 'table')
      io.out(
        `${table(['page size', 'txid', 'pages', 'size', 'file size'], [[r.pageSize, r.txid, r.pgid, r.size, r.fileSize].map(String)])}\n`,
      );
    else io.out(`Page Size: ${r.pageSize}\n`);
  },
};

const check: Command = {
  name: 'check',
  summary: 'verify the integrity of the database',
  usage: 'boltkv check PATH',
  flags: {},
  run(p, io) {
    const path = needPath(p);
    const problems = withDB(path, (db) => db.check());
    const w = outFormat(p);
    if (w === 'json') io.out(`${json({ ok: problems.length === 0, problems })}\n`);
    else if (w === 'table') io.out(`${table(['problem'], problems.length ? problems.map((x) => [x]) : [['none']])}\n`);
    else if (problems.length === 0) io.out('OK\n');
    else lines(io, problems);
    if (problems.length > 0) throw new CliError('ERR_CORRUPT', `${problems.length} errors found`);
  },
};

const buckets: Command = {
  name: 'buckets',
  summary: 'print the top-level buckets',
  usage: 'boltkv buckets PATH',
  flags: { format: formatFlag },
  run(p, io) {
    const path = needPath(p);
    const f = valueFormatOf(p.flags.format);
    const names = withDB(path, (db) =>
      db.view((tx) => {
        const out: string[] = [];
        tx.forEach((n) => {
          out.push(formatBytes(n, f));
        });
        return out;
      }),
    );
    const w = outFormat(p);
    if (w === 'json') io.out(`${json(names)}\n`);
    else if (w === 'table')
      io.out(
        `${table(
          ['bucket'],
          names.map((n) => [n]),
        )}\n`,
      );
    else lines(io, names);
  },
};

const keys: Command = {
  name: 'keys',
  summary: 'print the keys of a bucket',
  usage: 'boltkv keys PATH BUCKET [BUCKET...]',
  flags: { format: formatFlag, 'parse-format': parseFormatFlag },
  run(p, io) {
    const path = needPath(p);
    const names = p.args.slice(1).map((s) => parseKey(s, str(p.flags['parse-format'])));
    if (names.length === 0) throw usage('bucket required');
    const f = valueFormatOf(p.flags.format);
    const ks = withDB(path, (db) =>
      db.view((tx) => {
        const out: Array<{ key: string; bucket: boolean }> = [];
        bucketAt(tx, names).forEach((k, v) => {
          out.push({ key: formatBytes(k, f), bucket: v === null });
        });
        return out;
      }),
    );
    const w = outFormat(p);
    if (w === 'json') io.out(`${json(ks)}\n`);
    else if (w === 'table')
      io.out(
        `${table(
          ['key', 'bucket'],
          ks.map((k) => [k.key, k.bucket ? 'yes' : '']),
        )}\n`,
      );
    else
      lines(
        io,
        ks.map((k) => k.key),
      );
  },
};

const get: Command = {
  name: 'get',
  summary: 'print the value of a key in a bucket',
  usage: 'boltkv get PATH BUCKET [BUCKET...] KEY',
  flags: { format: formatFlag, 'parse-format': parseFormatFlag },
  run(p, io) {
    const path = needPath(p);
    const parts = p.args.slice(1).map((s) => parseKey(s, str(p.flags['parse-format'])));
    if (parts.length < 2) throw usage(parts.length === 0 ? 'bucket required' : 'key required');
    const key = parts.pop()!;
    const f = valueFormatOf(p.flags.format);
    const v = withDB(path, (db) =>
      db.view((tx) => {
        const b = bucketAt(tx, parts);
        const value = b.get(key);
        if (value === undefined) {
          if (b.bucket(key)) throw new CliError('ERR_INVALID_INPUT', 'the key names a bucket, not a value');
          throw new CliError('ERR_NOT_FOUND', 'key not found');
        }
        return formatBytes(value, f);
      }),
    );
    const w = outFormat(p);
    if (w === 'json') io.out(`${json({ key: formatBytes(key, f), value: v })}\n`);
    else if (w === 'table') io.out(`${table(['key', 'value'], [[formatBytes(key, f), v]])}\n`);
    else io.out(`${v}\n`);
  },
};

/** Sums of every bucket's stats, as `bbolt stats` prints them. */
type AggregateStats = BucketStats;

const pct = (a: number, b: number): string => `${b === 0 ? 0 : Math.floor((a * 100) / b)}%`;

const stats: Command = {
  name: 'stats',
  summary: 'walk every page and report usage statistics',
  usage: 'boltkv stats PATH [PREFIX]',
  flags: {},
  run(p, io) {
    const path = needPath(p);
    const prefix = p.args[1] ?? '';
    const s = withDB(path, (db) =>
      db.view((tx) => {
        const agg: AggregateStats = {
          branchPageN: 0,
          branchOverflowN: 0,
          leafPageN: 0,
          leafOverflowN: 0,
          keyN: 0,
          depth: 0,
          branchAlloc: 0,
          branchInuse: 0,
          leafAlloc: 0,
          leafInuse: 0,
          bucketN: 0,
          inlineBucketN: 0,
          inlineBucketInuse: 0,
        };
        let count = 0;
        tx.forEach((name, b) => {
          if (!Buffer.from(name).toString('latin1').startsWith(prefix)) return;
          count++;
          const bs = b.stats();
          for (const k of Object.keys(agg) as Array<keyof AggregateStats>) {
            agg[k] = k === 'depth' ? Math.max(agg[k], bs[k]) : agg[k] + bs[k];
          }
        });
        return { count, ...agg };
      }),
    );
    const w = outFormat(p);
    if (w === 'json') return void io.out(`${json(s)}\n`);
    if (w === 'table') {
      return void io.out(
        `${table(
          ['stat', 'value'],
          Object.entries(s).map(([k, v]) => [k, String(v)]),
        )}\n`,
      );
    }
    lines(io, [
      `Aggregate statistics for ${s.count} buckets`,
      '',
      'Page count statistics',
      `\tNumber of logical branch pages: ${s.branchPageN}`,
      `\tNumber of physical branch overflow pages: ${s.branchOverflowN}`,
      `\tNumber of logical leaf pages: ${s.leafPageN}`,
      `\tNumber of physical leaf overflow pages: ${s.leafOverflowN}`,
      'Tree statistics',
      `\tNumber of keys/value pairs: ${s.keyN}`,
      `\tNumber of levels in B+tree: ${s.depth}`,
      'Page size utilization',
      `\tBytes allocated for physical branch pages: ${s.branchAlloc}`,
      `\tBytes actually used for branch data: ${s.branchInuse} (${pct(s.branchInuse, s.branchAlloc)})`,
      `\tBytes allocated for physical leaf pages: ${s.leafAlloc}`,
      `\tBytes actually used for leaf data: ${s.leafInuse} (${pct(s.leafInuse, s.leafAlloc)})`,
      'Bucket statistics',
      `\tTotal number of buckets: ${s.bucketN}`,
      `\tTotal number on inlined buckets: ${s.inlineBucketN} (${pct(s.inlineBucketN, s.bucketN)})`,
      `\tBytes used for inlined buckets: ${s.inlineBucketInuse} (${pct(s.inlineBucketInuse, s.leafInuse)})`,
    ]);
  },
};

const compactCmd: Command = {
  name: 'compact',
  summary: 'copy a database into a new, dense file',
  usage: 'boltkv compact -o DST [--tx-max-size BYTES] SRC',
  flags: {
    o: { kind: 'string', help: 'destination path (must not exist)' },
    'tx-max-size': { kind: 'int', default: 65536, help: 'bytes of keys and values per destination transaction' },
    'no-sync': { kind: 'bool', help: 'skip fdatasync on the destination until the end' },
  },
  async run(p, io) {
    const src = needPath(p);
    const dst = str(p.flags.o);
    if (!dst) throw usage('destination path required (-o)');
    if (existsSync(dst)) throw new CliError('ERR_INVALID_INPUT', `destination exists: ${dst}`);
    const txMaxSize = num(p.flags['tx-max-size']);
    if (txMaxSize < 0) throw usage('--tx-max-size must be >= 0');
    const bar = progressBar(io, 'compact');
    await withDBAsync(src, true, async (sdb) => {
      const ddb = open(dst, { noSync: bool(p.flags['no-sync']), pageSize: sdb.pageSize });
      try {
        await compact(sdb, ddb, { txMaxSize, onProgress: (d, t) => bar.update(d, t) });
        ddb.sync();
      } catch (err) {
        ddb.close();
        rmSync(dst, { force: true });
        throw err;
      } finally {
        bar.done();
        ddb.close();
      }
    });
    const before = statSync(src).size;
    const after = statSync(dst).size;
    const r = { src, dst, srcSize: before, dstSize: after, gain: after === 0 ? 0 : before / after };
    const w = outFormat(p);
    if (w === 'json') io.out(`${json(r)}\n`);
    else if (w === 'table')
      io.out(
        `${table(['source', 'destination', 'before', 'after', 'gain'], [[src, dst, String(before), String(after), `${r.gain.toFixed(2)}x`]])}\n`,
      );
    else io.out(`${before} -> ${after} bytes (gain=${r.gain.toFixed(2)}x)\n`);
  },
};

const backup: Command = {
  name: 'backup',
  summary: 'write a consistent copy of the database (page for page) to a new file',
  usage: 'boltkv backup -o DST PATH',
  flags: { o: { kind: 'string', help: 'destination path' } },
  async run(p, io) {
    const src = needPath(p);
    const dst = str(p.flags.o);
    if (!dst) throw usage('destination path required (-o)');
    const bar = progressBar(io, 'backup');
    const bytes = await withDBAsync(src, true, (db) =>
      db.backup(dst, { onProgress: (d, t) => bar.update(d, t) }).finally(() => bar.done()),
    );
    const w = outFormat(p);
    if (w === 'json') io.out(`${json({ src, dst, bytes })}\n`);
    else if (w === 'table') io.out(`${table(['source', 'destination', 'bytes'], [[src, dst, String(bytes)]])}\n`);
    else io.out(`${bytes} bytes written to ${dst}\n`);
  },
};

const defrag: Command = {
  name: 'defrag',
  summary: 'rewrite a database file in place, dense (holds the file lock for the whole run)',
  usage: 'boltkv defrag [--tx-max-size BYTES] PATH',
  flags: {
    'tx-max-size': { kind: 'int', default: 1 << 20, help: 'bytes of keys and values per transaction of the copy' },
  },
  async run(p, io) {
    const path = needPath(p);
    const tmp = join(dirname(path), `.${basename(path)}.defrag-${process.pid}`);
    const before = statSync(path).size;
    const bar = progressBar(io, 'defrag');
    // Open writable so the exclusive lock keeps every other process out while the file is replaced.
    await withDBAsync(path, false, async (sdb) => {
      rmSync(tmp, { force: true });
      const ddb = open(tmp, { noSync: true, pageSize: sdb.pageSize });
      let ok = false;
      try {
        await compact(sdb, ddb, { txMaxSize: num(p.flags['tx-max-size']), onProgress: (d, t) => bar.update(d, t) });
        ddb.sync();
        ok = true;
      } finally {
        bar.done();
        ddb.close();
        if (ok) {
          renameSync(tmp, path);
          syncDir(dirname(path));
        } else rmSync(tmp, { force: true });
      }
    });
    const after = statSync(path).size;
    const w = outFormat(p);
    if (w === 'json') io.out(`${json({ path, before, after })}\n`);
    else if (w === 'table') io.out(`${table(['path', 'before', 'after'], [[path, String(before), String(after)]])}\n`);
    else io.out(`${before} -> ${after} bytes\n`);
  },
};

export const BOLT_COMMANDS: readonly Command[] = [
  bench,
  buckets,
  check,
  compactCmd,
  dump,
  get,
  info,
  keys,
  page,
  pages,
  stats,
  backup,
  defrag,
];
