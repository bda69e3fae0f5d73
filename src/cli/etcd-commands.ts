/**
 * etcdctl's commands against a store opened in this process (`--data-dir DIR`: the database at
 * DIR/member/snap/db, etcd's layout) or a running server (`--endpoints`: etcd or boltkv serve,
 * through connect()). Same flag names and output as etcdctl 3.4: simple text by default, `-w json`
 * as etcdctl's JSON, `-w table` where etcdctl has one. Both targets implement KV and Maintenance,
 * so each command is written once.
 */
import { createWriteStream, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { HashKVResponse, KV, Maintenance } from '../api/index.ts';
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import { ETCD_RECORDS, hashKVOfBackend } from '../mvcc/hash.ts';
import { tmpdir } from 'node:os';
import { ClientError, type Member } from '../client/index.ts';
import type { KeyValue, RangeRequest, ResponseOp, SortOrder, SortTarget } from '../api/index.ts';
import { open } from '../bolt/db.ts';
import { Crc32c } from '../mvcc/hash.ts';
import { bool, num, type Parsed, str } from './args.ts';
import type { Command } from './command.ts';
import { CliError, usage } from './errors.ts';
import { etcdJson } from './etcd-json.ts';
import { type CliIO, table, writeOutOf } from './output.ts';
import { progressBar } from './progress.ts';
import { endpointsOf, ETCD_GLOBAL_FLAGS, forEachEndpoint, out, withKV, withTarget } from './etcd-target.ts';
import { parseLease, parseTxn, rangeEnd } from './etcd-syntax.ts';

export { dbPathOf, ETCD_GLOBAL_FLAGS } from './etcd-target.ts';
export { parseCompare, parseTxn } from './etcd-syntax.ts';

const text = (b: Uint8Array, hex: boolean): string =>
  hex ? Buffer.from(b).toString('hex') : Buffer.from(b).toString('utf8');

function kvLines(kvs: readonly KeyValue[], hex: boolean, keysOnly = false, valueOnly = false): string[] {
  const lines: string[] = [];
  for (const kv of kvs) {
    if (!valueOnly) lines.push(text(kv.key, hex));
    if (!keysOnly) lines.push(text(kv.value, hex));
  }
  return lines;
}

const SORT_TARGETS: Record<string, SortTarget> = {
  CREATE: 'CREATE',
  KEY: 'KEY',
  MODIFY: 'MOD',
  VALUE: 'VALUE',
  VERSION: 'VERSION',
};

const get: Command = {
  name: 'get',
  summary: 'gets the key or a range of keys (etcdctl)',
  usage: 'boltkv get --data-dir DIR [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'get keys with matching prefix' },
    'from-key': { kind: 'bool', help: 'get keys that are greater than or equal to the given key' },
    limit: { kind: 'int', default: 0, help: 'maximum number of results' },
    rev: { kind: 'int', default: 0, help: 'specify the kv revision' },
    'keys-only': { kind: 'bool', help: 'get only the keys' },
    'count-only': { kind: 'bool', help: 'get only the count' },
    'print-value-only': { kind: 'bool', help: 'only write values when using the "simple" output format' },
    'sort-by': { kind: 'string', default: '', help: 'sort target: CREATE, KEY, MODIFY, VALUE or VERSION' },
    order: { kind: 'string', default: '', help: 'order of results: ASCEND or DESCEND' },
    consistency: { kind: 'string', default: 'l', help: 'linearizable (l) or serializable (s): the same in process' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('get command needs one argument as key and an optional argument as range_end');
    const req: RangeRequest = {
      key,
      rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), bool(p.flags['from-key'])),
      limit: num(p.flags.limit),
      revision: num(p.flags.rev),
      keysOnly: bool(p.flags['keys-only']),
      countOnly: bool(p.flags['count-only']),
    };
    if (bool(p.flags['print-value-only']) && writeOutOf(p.flags['write-out']) !== 'simple') {
      throw usage('print-value-only is only for `--write-out=simple`');
    }
    const sortBy = str(p.flags['sort-by']).toUpperCase();
    const order = str(p.flags.order).toUpperCase();
    if (sortBy !== '' && !(sortBy in SORT_TARGETS)) throw usage(`bad sort target: ${sortBy}`);
    if (order !== '' && order !== 'ASCEND' && order !== 'DESCEND') throw usage(`bad sort order: ${order}`);
    if (sortBy !== '' || order !== '') {
      req.sortTarget = SORT_TARGETS[sortBy || 'KEY'];
      req.sortOrder = (order || 'ASCEND') as SortOrder;
    }
    await withKV(p, async (kv) => {
      const r = await kv.range(req);
      out(p, io, r, () =>
        req.countOnly ? [String(r.count)] : kvLines(r.kvs, bool(p.flags.hex), false, bool(p.flags['print-value-only'])),
      );
    });
  },
};

const leaseHex = (id: bigint): string => id.toString(16);

async function readStdin(io: CliIO): Promise<string> {
  if (!io.stdin) throw usage('no standard input');
  return io.stdin();
}

const put: Command = {
  name: 'put',
  summary: 'puts the given key into the store (etcdctl)',
  usage: 'boltkv put --data-dir DIR [options] <key> <value> (value from standard input when omitted)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    lease: { kind: 'string', default: '0', help: 'lease ID (in hexadecimal) to attach to the key' },
    'prev-kv': { kind: 'bool', help: 'return the previous key-value pair before modification' },
    'ignore-value': { kind: 'bool', help: 'update the key using its current value' },
    'ignore-lease': { kind: 'bool', help: 'update the key using its current lease' },
  },
  async run(p, io) {
    const [key, valueArg] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('put command needs 1 argument and input from stdin or 2 arguments');
    const ignoreValue = bool(p.flags['ignore-value']);
    if (ignoreValue && valueArg !== undefined)
      throw usage('put command needs only 1 argument when --ignore-value is set');
    const value = ignoreValue ? undefined : (valueArg ?? (await readStdin(io)));
    const lease = parseLease(str(p.flags.lease));
    await withKV(p, async (kv) => {
      const r = await kv.put({
        key,
        value,
        lease,
        prevKv: bool(p.flags['prev-kv']),
        ignoreValue,
        ignoreLease: bool(p.flags['ignore-lease']),
      });
      out(p, io, r, () => ['OK', ...(r.prevKv ? kvLines([r.prevKv], bool(p.flags.hex)) : [])]);
    });
  },
};

const del: Command = {
  name: 'del',
  summary: 'removes the specified key or range of keys (etcdctl)',
  usage: 'boltkv del --data-dir DIR [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'delete keys with matching prefix' },
    'from-key': { kind: 'bool', help: 'delete keys that are greater than or equal to the given key' },
    'prev-kv': { kind: 'bool', help: 'return deleted key-value pairs' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('del command needs one argument as key and an optional argument as range_end');
    await withKV(p, async (kv) => {
      const r = await kv.deleteRange({
        key,
        rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), bool(p.flags['from-key'])),
        prevKv: bool(p.flags['prev-kv']),
      });
      out(p, io, r, () => [String(r.deleted), ...kvLines(r.prevKvs ?? [], bool(p.flags.hex))]);
    });
  },
};

const compaction: Command = {
  name: 'compaction',
  summary: 'compacts the event history (etcdctl)',
  usage: 'boltkv compaction --data-dir DIR [--physical] <revision>',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    physical: { kind: 'bool', help: 'wait for the compaction to physically remove all old revisions' },
  },
  async run(p, io) {
    const [revArg] = p.args;
    if (revArg === undefined || p.args.length !== 1 || !/^\d+$/.test(revArg))
      throw usage('compaction command needs 1 argument (a revision)');
    await withKV(p, async (kv) => {
      const r = await kv.compact({ revision: Number(revArg), physical: bool(p.flags.physical) });
      void r;
      // etcdctl prints this line whatever the output format.
      io.out(`compacted revision ${revArg}\n`);
    });
  },
};

const defragEtcd: Command = {
  name: 'defrag',
  summary: 'defragments the storage of each member (etcdctl) — boltkv: online, writers pause only for the swap',
  usage: 'boltkv defrag --data-dir DIR | --endpoints URLS',
  flags: { ...ETCD_GLOBAL_FLAGS },
  async run(p, io) {
    let failures = 0;
    await forEachEndpoint(p, async (m, ep) => {
      try {
        await m.defragment();
        io.out(`Finished defragmenting etcd member[${ep}]\n`);
      } catch (e) {
        failures++;
        io.err(`Failed to defragment etcd member[${ep}] (${e instanceof Error ? e.message : String(e)})\n`);
      }
    });
    if (failures > 0) throw new CliError('ERR_PARTIAL_FAILURE', `${failures} member(s) failed to defragment`);
  },
};

/** etcd's snapshot status: a CRC-32C over every bucket name, key and value; keys counted; revision from the key bucket. */
function snapshotStatus(path: string): { hash: number; revision: number; totalKey: number; totalSize: number } {
  const db = open(path, { readOnly: true });
  try {
    return db.view((tx) => {
      const problems = tx.check();
      if (problems.length > 0)
        throw new CliError(
          'ERR_CORRUPT',
          `snapshot file integrity check failed. ${problems.length} errors found: ${problems[0]}`,
        );
      const h = new Crc32c();
      let totalKey = 0;
      let revision = 0;
      tx.forEach((name, b) => {
        h.update(name);
        const isKey = Buffer.from(name).toString() === 'key';
        b.forEach((k, v) => {
          h.update(k);
          if (v) h.update(v);
          if (isKey && k.length >= 8) revision = Number(Buffer.from(k).readBigUInt64BE(0));
          totalKey++;
        });
      });
      return { hash: h.digest(), revision, totalKey, totalSize: tx.size };
    });
  } finally {
    db.close();
  }
}

/** go-humanize's Bytes, as etcdctl prints sizes: SI units, one decimal below 10, Go's rounding. */
function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  if (val < 10) return `${val.toFixed(1)} ${sizes[e]}`;
  // Go's %.0f rounds an exact half to even.
  const f = Math.floor(val);
  const whole = val - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(val);
  return `${whole} ${sizes[e]}`;
}

const snapshot: Command = {
  name: 'snapshot',
  summary: 'snapshot save <file> | snapshot status <file> (etcdctl)',
  usage: 'boltkv snapshot save --data-dir DIR | --endpoints URL <file> | boltkv snapshot status <file>',
  flags: { ...ETCD_GLOBAL_FLAGS },
  async run(p, io) {
    const [sub, file] = p.args;
    if (sub === 'save') {
      if (file === undefined || p.args.length !== 2) throw usage('snapshot save expects one argument');
      const list = endpointsOf(p);
      if (list && list.length !== 1)
        throw usage(`snapshot must be requested to one selected node, not multiple [${list.join(' ')}]`);
      const part = `${file}.part`;
      await withTarget(p, async ({ kv }) => {
        const bar = progressBar(io, 'snapshot');
        const abort = new AbortController();
        let n = 0;
        const counted = async function* (src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
          for await (const c of src) {
            bar.update((n += c.length), n);
            yield c;
          }
        };
        try {
          await pipeline(kv.snapshot({ signal: abort.signal }), counted, createWriteStream(part));
          renameSync(part, file);
        } catch (err) {
          abort.abort();
          rmSync(part, { force: true });
          throw err;
        } finally {
          bar.done();
        }
      });
      // etcdctl prints this line whatever the output format.
      io.out(`Snapshot saved at ${file}\n`);
      return;
    }
    if (sub === 'status') {
      if (file === undefined || p.args.length !== 2) throw usage('snapshot status requires exactly one argument');
      const s = snapshotStatus(file);
      const w = writeOutOf(p.flags['write-out']);
      if (w === 'json') io.out(`${JSON.stringify(s)}\n`);
      else if (w === 'table')
        io.out(
          `${table(['hash', 'revision', 'total keys', 'total size'], [[s.hash.toString(16), String(s.revision), String(s.totalKey), humanBytes(s.totalSize)]])}\n`,
        );
      else io.out(`${s.hash.toString(16)}, ${s.revision}, ${s.totalKey}, ${humanBytes(s.totalSize)}\n`);
      return;
    }
    throw usage('snapshot needs a subcommand: save or status');
  },
};

/**
 * HashKV of one member. etcd 3.4's JSON gateway has no route to it (ERR_UNSUPPORTED): then the
 * member's snapshot is fetched into a temporary file and hashed here, as etcd would hash that
 * revision — the whole database crosses the wire, so a note says so on stderr.
 */
async function hashKVOf(m: KV & Maintenance, rev: number, io: CliIO): Promise<HashKVResponse> {
  try {
    return await m.hashKV(rev);
  } catch (e) {
    if (!(e instanceof ClientError) || e.code !== 'ERR_UNSUPPORTED') throw e;
  }
  io.err('(this server has no HashKV on its gateway: hashing a snapshot of it)\n');
  const tmp = mkdtempSync(join(tmpdir(), 'boltkv-hashkv-'));
  try {
    const file = join(tmp, 'snapshot.db');
    const status = await m.status();
    await pipeline(m.snapshot(), createWriteStream(file));
    const backend = BoltBackend.open(file, { readOnly: true });
    try {
      const h = backend.view((r) => hashKVOfBackend(r, rev, ETCD_RECORDS));
      return { header: { ...status.header, revision: h.revision }, hash: h.hash, compactRevision: h.compactRevision };
    } finally {
      backend.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const endpoint: Command = {
  name: 'endpoint',
  summary: 'endpoint status | endpoint hashkv [--rev N] of each member (etcdctl)',
  usage: 'boltkv endpoint status|hashkv --data-dir DIR | --endpoints URLS [--rev N]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    rev: { kind: 'int', default: 0, help: 'maximum revision to hash (hashkv; 0: latest)' },
  },
  async run(p, io) {
    const [sub] = p.args;
    if (sub !== 'status' && sub !== 'hashkv') throw usage('endpoint needs a subcommand: status or hashkv');
    const w = writeOutOf(p.flags['write-out']);
    const rows: string[][] = [];
    const json: unknown[] = [];
    await forEachEndpoint(p, async (m, ep) => {
      if (sub === 'status') {
        const s = await m.status();
        const id = s.header.memberId ?? 0n;
        json.push({ Endpoint: ep, Status: s });
        rows.push([
          ep,
          id.toString(16),
          s.version,
          humanBytes(s.dbSize),
          String((s.leader ?? 0n) === id),
          String(s.isLearner === true),
          String(s.raftTerm ?? 0),
          String(s.raftIndex ?? 0),
          String(s.raftAppliedIndex ?? 0),
          s.errors.join(', '),
        ]);
      } else {
        const h = await hashKVOf(m, num(p.flags.rev), io);
        json.push({ Endpoint: ep, HashKV: { header: h.header, hash: h.hash, compactRevision: h.compactRevision } });
        rows.push([ep, String(h.hash)]);
      }
    });
    if (w === 'json') return void io.out(`${etcdJson(json)}\n`);
    if (w === 'table') {
      const head =
        sub === 'status'
          ? [
              'endpoint',
              'id',
              'version',
              'db size',
              'is leader',
              'is learner',
              'raft term',
              'raft index',
              'raft applied index',
              'errors',
            ]
          : ['endpoint', 'hash'];
      return void io.out(`${table(head, rows)}\n`);
    }
    io.out(rows.map((r) => `${r.join(', ')}\n`).join(''));
  },
};

const alarm: Command = {
  name: 'alarm',
  summary: 'alarm list | alarm disarm (etcdctl)',
  usage: 'boltkv alarm list|disarm --data-dir DIR | --endpoints URLS',
  flags: { ...ETCD_GLOBAL_FLAGS },
  async run(p, io) {
    const [sub] = p.args;
    if (sub !== 'list' && sub !== 'disarm') throw usage('alarm needs a subcommand: list or disarm');
    await withTarget(p, async ({ kv }) => {
      const r = sub === 'list' ? await kv.alarmList() : await kv.alarmDisarm();
      // etcd 3.4's alarm answers carry no header: print what etcdctl prints for them.
      out(p, io, { alarms: r.alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) }, () =>
        r.alarms.map((a) => `memberID:${a.memberId} alarm:${a.alarm} `),
      );
    });
  },
};

const lease: Command = {
  name: 'lease',
  summary: 'lease grant <ttl> | revoke <id> | timetolive <id> [--keys] | list | keep-alive --once <id> (etcdctl)',
  usage: 'boltkv lease grant|revoke|timetolive|list|keep-alive --data-dir DIR ...',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    keys: { kind: 'bool', help: 'timetolive: list the attached keys' },
    once: { kind: 'bool', help: 'keep-alive: renew once and exit (required in process)' },
  },
  async run(p, io) {
    const [sub, arg] = p.args;
    await withKV(p, async (kv) => {
      switch (sub) {
        case 'grant': {
          if (arg === undefined || !/^\d+$/.test(arg)) throw usage('lease grant needs TTL argument');
          const r = await kv.leaseGrant({ TTL: Number(arg) });
          return out(p, io, r, () => [`lease ${leaseHex(r.ID)} granted with TTL(${r.TTL}s)`]);
        }
        case 'revoke': {
          if (arg === undefined) throw usage('lease revoke needs 1 argument');
          const id = parseLease(arg);
          const r = await kv.leaseRevoke({ ID: id });
          return out(p, io, r, () => [`lease ${leaseHex(id)} revoked`]);
        }
        case 'timetolive': {
          if (arg === undefined) throw usage('lease timetolive needs lease ID as argument');
          const id = parseLease(arg);
          const r = await kv.leaseTimeToLive({ ID: id, keys: bool(p.flags.keys) });
          return out(p, io, r, () => {
            if (r.TTL === -1) return [`lease ${leaseHex(id)} already expired`];
            const base = `lease ${leaseHex(id)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
            return [
              bool(p.flags.keys)
                ? `${base}, attached keys([${r.keys.map((k) => Buffer.from(k).toString()).join(' ')}])`
                : base,
            ];
          });
        }
        case 'list': {
          const r = await kv.leaseLeases();
          return out(p, io, r, () => [`found ${r.leases.length} leases`, ...r.leases.map((l) => leaseHex(l.ID))]);
        }
        case 'keep-alive': {
          if (arg === undefined) throw usage('lease keep-alive needs lease ID as argument');
          if (!bool(p.flags.once)) throw usage('in process, lease keep-alive needs --once');
          const id = parseLease(arg);
          const r = await kv.leaseKeepAlive({ ID: id });
          return out(p, io, r, () => [`lease ${leaseHex(id)} keepalived with TTL(${r.TTL})`]);
        }
        default:
          throw usage('lease needs a subcommand: grant, revoke, timetolive, list or keep-alive');
      }
    });
  },
};

function responseLines(r: ResponseOp, hex: boolean): string[] {
  if ('responsePut' in r) return ['OK', ...(r.responsePut.prevKv ? kvLines([r.responsePut.prevKv], hex) : [])];
  if ('responseRange' in r) return kvLines(r.responseRange.kvs, hex);
  if ('responseDeleteRange' in r)
    return [String(r.responseDeleteRange.deleted), ...kvLines(r.responseDeleteRange.prevKvs ?? [], hex)];
  return [];
}

const txn: Command = {
  name: 'txn',
  summary: 'txn processes all the requests in one transaction, read from standard input (etcdctl)',
  usage: 'boltkv txn --data-dir DIR < requests (compares, blank line, success requests, blank line, failure requests)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    interactive: { kind: 'bool', help: 'accepted for etcdctl parity: input is always read from standard input' },
  },
  async run(p, io) {
    const t = parseTxn(await readStdin(io));
    await withKV(p, async (kv) => {
      const r = await kv.txn(t);
      out(p, io, r, () => {
        const lines = [r.succeeded ? 'SUCCESS' : 'FAILURE'];
        for (const op of r.responses) lines.push('', ...responseLines(op, bool(p.flags.hex)));
        return lines;
      });
    });
  },
};

const watch: Command = {
  name: 'watch',
  summary: 'watches events on a key or prefix until interrupted (etcdctl; with --data-dir or --endpoints)',
  usage: 'boltkv watch --data-dir DIR | --endpoints URLS [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'watch on a prefix if prefix is set' },
    rev: { kind: 'int', default: 0, help: 'revision to start watching' },
    'prev-kv': { kind: 'bool', help: 'get the previous key-value pair before the event happens' },
    'progress-notify': { kind: 'bool', help: 'get periodic watch progress notification from server' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2) throw usage('watch needs a key and an optional range_end');
    const json = writeOutOf(p.flags['write-out']) === 'json';
    await withKV(p, async (kv) => {
      const w = kv.watch({
        key,
        rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), false),
        startRevision: num(p.flags.rev),
        prevKv: bool(p.flags['prev-kv']),
        progressNotify: bool(p.flags['progress-notify']),
        signal: io.signal,
      });
      for await (const resp of w) {
        if (json) {
          io.out(`${etcdJson(resp)}\n`);
          continue;
        }
        if (resp.canceled || resp.compactRevision)
          io.err(
            `watch was canceled (${resp.cancelReason ?? `etcdserver: mvcc: required revision has been compacted`})\n`,
          );
        if (resp.events.length === 0 && !resp.canceled && !resp.created)
          io.out(`progress notify: ${resp.header.revision}\n`);
        const lines: string[] = [];
        for (const e of resp.events) {
          lines.push(e.type);
          if (e.prevKv) lines.push(...kvLines([e.prevKv], bool(p.flags.hex)));
          lines.push(...kvLines([e.kv], bool(p.flags.hex)));
        }
        if (lines.length > 0) io.out(`${lines.join('\n')}\n`);
      }
    });
  },
};

function parseMemberId(s: string | undefined): bigint {
  if (s === undefined) throw usage('member ID is not provided');
  if (!/^[0-9a-fA-F]{1,16}$/.test(s))
    throw usage(
      `bad member ID arg (strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax), expecting ID in Hex`,
    );
  return BigInt(`0x${s}`);
}

function peerURLsOf(p: Parsed): string[] {
  const urls = str(p.flags['peer-urls'])
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw usage('member peer urls not provided');
  for (const u of urls) if (!/^https?:\/\/[^/]+/.test(u)) throw usage(`URL scheme must be http or https: ${u}`);
  return urls;
}

/** etcdctl's %16x: the id in hex, right-aligned in 16 columns. */
const id16 = (id: bigint | undefined): string => (id ?? 0n).toString(16).padStart(16, ' ');

function memberRows(members: readonly Member[]): string[][] {
  return members.map((m) => [
    m.ID.toString(16),
    m.name === '' ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    String(m.isLearner),
  ]);
}

const member: Command = {
  name: 'member',
  summary:
    'member list | add <name> --peer-urls URLS [--learner] | remove <id> | update <id> --peer-urls URLS | promote <id> (etcdctl)',
  usage: 'boltkv member list|add|remove|update|promote --endpoints URLS ... (list also with --data-dir)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    'peer-urls': { kind: 'string', default: '', help: 'add, update: comma-separated peer URLs of the member' },
    learner: { kind: 'bool', help: 'add: the new member joins as a learner (promote it once it has caught up)' },
  },
  async run(p, io) {
    const [sub, arg] = p.args;
    const w = writeOutOf(p.flags['write-out']);
    if (sub === 'list') {
      return withTarget(p, async ({ client, endpoint }) => {
        if (!client) {
          // One member, in process: no peer URLs, no id.
          const resp = { header: {}, members: [{ name: 'default', clientURLs: [endpoint] }] };
          return out(p, io, resp, () => [`0, started, default, , ${endpoint}, false`]);
        }
        const r = await client.memberList();
        if (w === 'table')
          return void io.out(
            `${table(['id', 'status', 'name', 'peer addrs', 'client addrs', 'is learner'], memberRows(r.members))}\n`,
          );
        out(p, io, r, () => memberRows(r.members).map((row) => row.join(', ')));
      });
    }
    if (sub !== 'add' && sub !== 'remove' && sub !== 'update' && sub !== 'promote') {
      throw usage('member needs a subcommand: list, add, remove, update or promote');
    }
    if (p.args.length !== 2) {
      throw usage(sub === 'add' ? 'member name not provided' : `member ID is not provided`);
    }
    await withTarget(p, async ({ client }) => {
      if (!client)
        throw usage(`member ${sub} needs --endpoints: a data directory opened here is one member without raft`);
      switch (sub) {
        case 'add': {
          const peerURLs = peerURLsOf(p);
          const learner = bool(p.flags.learner);
          const r = await client.memberAdd({ peerURLs, isLearner: learner });
          if (w !== 'simple') return out(p, io, r, () => []);
          // etcdctl 3.4 says "added" for a learner too.
          const lines = [`Member ${id16(r.member.ID)} added to cluster ${id16(r.header.clusterId)}`, ''];
          // The configuration the new member starts with: every member's name and peer URLs, the new one named as given.
          const list = await client.memberList();
          const conf: string[] = [];
          for (const m of list.members)
            for (const u of m.peerURLs) conf.push(`${m.ID === r.member.ID ? arg : m.name}=${u}`);
          lines.push(
            `ETCD_NAME=${JSON.stringify(arg)}`,
            `ETCD_INITIAL_CLUSTER=${JSON.stringify(conf.join(','))}`,
            `ETCD_INITIAL_ADVERTISE_PEER_URLS=${JSON.stringify(peerURLs.join(','))}`,
            'ETCD_INITIAL_CLUSTER_STATE="existing"',
          );
          return void io.out(`${lines.join('\n')}\n`);
        }
        case 'remove': {
          const id = parseMemberId(arg);
          const r = await client.memberRemove(id);
          return out(p, io, r, () => [`Member ${id16(id)} removed from cluster ${id16(r.header.clusterId)}`]);
        }
        case 'update': {
          const id = parseMemberId(arg);
          const r = await client.memberUpdate(id, peerURLsOf(p));
          return out(p, io, r, () => [`Member ${id16(id)} updated in cluster ${id16(r.header.clusterId)}`]);
        }
        case 'promote': {
          const id = parseMemberId(arg);
          const r = await client.memberPromote(id);
          return out(p, io, r, () => [`Member ${id16(id)} promoted in cluster ${id16(r.header.clusterId)}`]);
        }
      }
    });
  },
};

export const ETCD_COMMANDS: readonly Command[] = [
  get,
  put,
  del,
  txn,
  watch,
  compaction,
  defragEtcd,
  snapshot,
  endpoint,
  alarm,
  lease,
  member,
];

/** Commands that exist only in etcdctl's form. */
export const ETCD_ONLY = new Set([
  'del',
  'put',
  'txn',
  'watch',
  'compaction',
  'snapshot',
  'endpoint',
  'alarm',
  'lease',
  'member',
]);

/** True when argv asks for the etcdctl form of a command (it names a data dir or endpoints). */
export function wantsEtcd(argv: readonly string[]): boolean {
  return argv.some((a) => /^--?(data-dir|endpoints)(=|$)/.test(a));
}
