/** etcdctl's maintenance commands: defrag, snapshot save|status, endpoint status|hashkv and alarm. */
import { alarmText } from '../api/alarm-store.ts';
import { createWriteStream, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { HashKVResponse, KV, Maintenance } from '../api/index.ts';
import { open } from '../bolt/db.ts';
import { ClientError } from '../client/index.ts';
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import { Crc32c, ETCD_RECORDS, hashKVOfBackend } from '../mvcc/hash.ts';
import { num } from './args.ts';
import type { Command } from './command.ts';
import { CliError, usage } from './errors.ts';
import { etcdJson } from './etcd-json.ts';
import { endpointsOf, ETCD_GLOBAL_FLAGS, forEachEndpoint, out, withTarget } from './etcd-target.ts';
import { type CliIO, table, writeOutOf } from './output.ts';
import { progressBar } from './progress.ts';

export const defragEtcd: Command = {
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

export const snapshot: Command = {
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

export const endpoint: Command = {
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

export const alarm: Command = {
  name: 'alarm',
  summary: 'alarm list | alarm disarm (etcdctl)',
  usage: 'boltkv alarm list|disarm --data-dir DIR | --endpoints URLS',
  flags: { ...ETCD_GLOBAL_FLAGS },
  async run(p, io) {
    const [sub] = p.args;
    if (sub !== 'list' && sub !== 'disarm') throw usage('alarm needs a subcommand: list or disarm');
    await withTarget(p, async ({ kv }) => {
      const r = sub === 'list' ? await kv.alarmList() : await kv.alarmDisarm();
      // etcdctl has no table for alarms: it fails after the call (a disarm has happened).
      if (writeOutOf(p.flags['write-out']) === 'table')
        throw new CliError('ERR_UNSUPPORTED', 'table not supported as output format');
      // etcd 3.4's alarm answers carry no header: print what etcdctl prints for them.
      out(p, io, { alarms: r.alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) }, () =>
        r.alarms.map(alarmText),
      );
    });
  },
};
