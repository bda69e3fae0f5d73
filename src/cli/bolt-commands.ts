/**
 * bbolt's file commands (check, info, stats, buckets, keys, get, pages, page, dump, compact) plus
 * backup and defrag, on a database file opened in this process; `bench` is in bolt-bench.ts.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { syncDir } from '../bolt/backup.ts';
import type { Bucket, BucketStats } from '../bolt/bucket.ts';
import { compact } from '../bolt/compact.ts';
import { type DB, open } from '../bolt/db.ts';
import { decodeFreelistPage } from '../bolt/freelist/index.ts';
import { decodeMeta, PGID_NO_FREELIST } from '../bolt/meta.ts';
import {
  BRANCH_FLAG,
  BUCKET_LEAF_FLAG,
  FREELIST_FLAG,
  LEAF_FLAG,
  META_FLAG,
  Page,
  pageTypeName,
  readU64,
} from '../bolt/page.ts';
import type { Tx } from '../bolt/tx.ts';
import { bool, num, type Parsed, str } from './args.ts';
import { CliError, usage } from './errors.ts';
import { type CliIO, formatBytes, json, parseKey, table, valueFormatOf, type WriteOut, writeOutOf } from './output.ts';
import { bench } from './bolt-bench.ts';
import type { Command } from './command.ts';
import { progressBar } from './progress.ts';

function needPath(p: Parsed): string {
  const path = p.args[0];
  if (!path) throw usage('path required');
  if (!existsSync(path)) throw new CliError('ERR_FILE_NOT_FOUND', `file not found: ${path}`);
  return path;
}

/** Open read-only (a shared lock: fails with ERR_LOCK_TIMEOUT while a writer process holds the file). */
function withDB<T>(path: string, fn: (db: DB) => T): T {
  const db = open(path, { readOnly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

async function withDBAsync<T>(path: string, readOnly: boolean, fn: (db: DB) => Promise<T>): Promise<T> {
  const db = open(path, { readOnly });
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

function outFormat(p: Parsed): WriteOut {
  return writeOutOf(p.flags['write-out']);
}

function lines(io: CliIO, items: readonly string[]): void {
  if (items.length > 0) io.out(`${items.join('\n')}\n`);
}

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

const formatFlag = {
  kind: 'string',
  default: 'auto',
  help: 'value format: auto, ascii-encoded, hex, bytes or redacted',
} as const;
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

interface PageRow {
  id: number;
  type: string;
  items: number | null;
  overflow: number;
}

/** Every page of the snapshot, as bbolt's `pages` lists them: free pages by id, others by header. */
function pageRows(db: DB, tx: Tx): PageRow[] {
  const free = new Set(db.freelist.copyAll());
  const rows: PageRow[] = [];
  const ps = db.pageSize;
  for (let id = 0; id < tx.meta.pgid; ) {
    if (free.has(id)) {
      rows.push({ id, type: 'free', items: null, overflow: 0 });
      id++;
      continue;
    }
    const page = new Page(db.pager.readRaw(id * ps, ps));
    let items: number = page.count;
    if (page.flags === FREELIST_FLAG) items = freelistIds(db, id, page).length;
    if (page.flags === META_FLAG) items = 0;
    rows.push({ id, type: pageTypeName(page.flags), items, overflow: page.overflow });
    id += 1 + (page.flags === META_FLAG ? 0 : page.overflow);
  }
  return rows;
}

function freelistIds(db: DB, id: number, head: Page): number[] {
  const buf = head.overflow === 0 ? head.buf : db.pager.readRaw(id * db.pageSize, (head.overflow + 1) * db.pageSize);
  return decodeFreelistPage(buf);
}

const pages: Command = {
  name: 'pages',
  summary: 'print the list of pages with their types',
  usage: 'boltkv pages PATH',
  flags: {},
  run(p, io) {
    const path = needPath(p);
    const rows = withDB(path, (db) => db.view((tx) => pageRows(db, tx)));
    const w = outFormat(p);
    if (w === 'json') return void io.out(`${json(rows)}\n`);
    const cells = rows.map((r) => [
      String(r.id),
      r.type,
      r.items === null ? '' : String(r.items),
      r.overflow ? String(r.overflow) : '',
    ]);
    if (w === 'table') return void io.out(`${table(['id', 'type', 'items', 'overflow'], cells)}\n`);
    lines(io, [
      'ID       TYPE       ITEMS  OVRFLW',
      '======== ========== ====== ======',
      ...cells.map((c) => `${c[0]!.padEnd(8)} ${c[1]!.padEnd(10)} ${c[2]!.padEnd(6)} ${c[3]}`.trimEnd()),
    ]);
  },
};

function readPageAt(db: DB, tx: Tx, id: number): Page {
  if (!Number.isSafeInteger(id) || id < 0) throw usage(`invalid page id: ${id}`);
  if (id >= tx.meta.pgid) throw new CliError('ERR_NOT_FOUND', `page not found: ${id} (high water ${tx.meta.pgid})`);
  const ps = db.pageSize;
  const head = new Page(db.pager.readRaw(id * ps, ps));
  if (head.overflow === 0 || head.flags === META_FLAG || id + head.overflow >= tx.meta.pgid) return head;
  return new Page(db.pager.readRaw(id * ps, (head.overflow + 1) * ps));
}

function describePage(
  db: DB,
  tx: Tx,
  id: number,
  f: ReturnType<typeof valueFormatOf>,
): { header: Record<string, unknown>; items: string[] } {
  const page = readPageAt(db, tx, id);
  const header: Record<string, unknown> = {
    id,
    type: pageTypeName(page.flags),
    size: page.buf.length,
    overflow: page.overflow,
    count: page.count,
  };
  const items: string[] = [];
  if (page.flags === META_FLAG) {
    try {
      const m = decodeMeta(page.buf);
      header.meta = {
        ...m,
        sequence: m.sequence.toString(),
        freelist: m.freelist === PGID_NO_FREELIST ? '<no freelist>' : m.freelist,
      };
      items.push(
        `Version: 2`,
        `Page Size: ${m.pageSize} bytes`,
        `Flags: ${m.flags.toString(16).padStart(8, '0')}`,
        `Root: <pgid=${m.root}>`,
        `Freelist: ${m.freelist === PGID_NO_FREELIST ? '<pgid=none>' : `<pgid=${m.freelist}>`}`,
        `HWM: <pgid=${m.pgid}>`,
        `Txn ID: ${m.txid}`,
      );
    } catch (err) {
      items.push(`invalid meta: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else if (page.flags === LEAF_FLAG) {
    page.validate();
    for (let i = 0; i < page.count; i++) {
      const k = formatBytes(page.key(i), f === 'auto' ? 'ascii-encoded' : f);
      const v = page.value(i);
      if (page.elementFlags(i) & BUCKET_LEAF_FLAG) {
        const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
        items.push(`${k}: <pgid=${readU64(dv, 0)},seq=${dv.getBigUint64(8, true)}>`);
      } else items.push(`${k}: ${formatBytes(v, f === 'auto' ? 'ascii-encoded' : f)}`);
    }
  } else if (page.flags === BRANCH_FLAG) {
    page.validate();
    for (let i = 0; i < page.count; i++)
      items.push(`${formatBytes(page.key(i), f === 'auto' ? 'ascii-encoded' : f)}: <pgid=${page.child(i)}>`);
  } else if (page.flags === FREELIST_FLAG) {
    for (const fid of freelistIds(db, id, page)) items.push(String(fid));
  }
  return { header, items };
}

const page: Command = {
  name: 'page',
  summary: 'print one or more pages in human-readable form',
  usage: 'boltkv page PATH PAGEID [PAGEID...] | boltkv page --all PATH',
  flags: { all: { kind: 'bool', help: 'print every page (overflow pages are skipped)' }, 'format-value': formatFlag },
  run(p, io) {
    const path = needPath(p);
    const f = valueFormatOf(p.flags['format-value']);
    const out = withDB(path, (db) =>
      db.view((tx) => {
        let ids: number[];
        if (bool(p.flags.all))
          ids = pageRows(db, tx)
            .filter((r) => r.type !== 'free')
            .map((r) => r.id);
        else {
          ids = p.args.slice(1).map((s) => {
            if (!/^\d+$/.test(s)) throw usage(`invalid page id: ${s}`);
            return Number(s);
          });
          if (ids.length === 0) throw usage('page id required');
        }
        return ids.map((id) => describePage(db, tx, id, f));
      }),
    );
    const w = outFormat(p);
    if (w === 'json') return void io.out(`${json(out)}\n`);
    const blocks = out.map(({ header: h, items }) =>
      [
        `Page ID:    ${h.id}`,
        `Page Type:  ${h.type}`,
        `Total Size: ${h.size} bytes`,
        `Overflow pages: ${h.overflow}`,
        `Item Count: ${h.count}`,
        '',
        ...items,
      ].join('\n'),
    );
    io.out(`${blocks.join('\n\n')}\n`);
  },
};

/** A hex dump in the classic 16-bytes-a-line layout, collapsing repeated lines to `*`. */
function hexDump(buf: Uint8Array, base: number): string[] {
  const out: string[] = [];
  let prev = '';
  let starred = false;
  for (let off = 0; off < buf.length; off += 16) {
    const row = buf.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    if (hex === prev && off + 16 < buf.length) {
      if (!starred) out.push('*');
      starred = true;
      continue;
    }
    prev = hex;
    starred = false;
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    out.push(`${(base + off).toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  return out;
}

const dump: Command = {
  name: 'dump',
  summary: 'print a hexadecimal dump of pages',
  usage: 'boltkv dump PATH PAGEID [PAGEID...]',
  flags: {},
  run(p, io) {
    const path = needPath(p);
    const ids = p.args.slice(1).map((s) => {
      if (!/^\d+$/.test(s)) throw usage(`invalid page id: ${s}`);
      return Number(s);
    });
    if (ids.length === 0) throw usage('page id required');
    const out = withDB(path, (db) =>
      db.view((tx) => ids.map((id) => ({ id, base: id * db.pageSize, bytes: readPageAt(db, tx, id).buf }))),
    );
    const w = outFormat(p);
    if (w === 'json')
      return void io.out(`${json(out.map((o) => ({ id: o.id, hex: Buffer.from(o.bytes).toString('hex') })))}\n`);
    for (const o of out) lines(io, [...hexDump(o.bytes, o.base), '']);
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
