/**
 * bbolt's page inspection commands: `pages` (every page with its type), `page` (pages decoded) and
 * `dump` (pages in hex), reading raw pages of the file under a read transaction.
 */
import { type DB } from '../bolt/db.ts';
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
import { bool } from './args.ts';
import { formatFlag, lines, needPath, outFormat, withDB } from './bolt-file.ts';
import type { Command } from './command.ts';
import { CliError, usage } from './errors.ts';
import { formatBytes, json, table, valueFormatOf } from './output.ts';

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

export const pages: Command = {
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

export const page: Command = {
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

export const dump: Command = {
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
