/**
 * `boltkv bench`, bbolt's synthetic benchmark: write `count` keys in batches (sequential or
 * random order), then read them back for at least a second, and print bbolt's summary lines.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { open } from '../bolt/db.ts';
import { bool, num, str } from './args.ts';
import type { Command } from './command.ts';
import { CliError, usage } from './errors.ts';
import { json, table, writeOutOf } from './output.ts';
import { progressBar } from './progress.ts';

export const bench: Command = {
  name: 'bench',
  summary: 'run a synthetic write and read benchmark',
  usage:
    'boltkv bench [--count N] [--batch-size N] [--key-size N] [--value-size N] [--write-mode seq|rnd] [--read-mode seq|rnd] [--no-sync] [--fill-percent F] [--path PATH] [--work]',
  flags: {
    count: { kind: 'int', default: 1000, help: 'keys to write' },
    'batch-size': { kind: 'int', default: 0, help: 'keys per transaction (0: all in one)' },
    'key-size': { kind: 'int', default: 8, help: 'key bytes' },
    'value-size': { kind: 'int', default: 32, help: 'value bytes' },
    'write-mode': { kind: 'string', default: 'seq', help: 'seq or rnd' },
    'read-mode': { kind: 'string', default: 'seq', help: 'seq or rnd' },
    'fill-percent': { kind: 'number', default: 0.5, help: 'bucket fill percent' },
    'no-sync': { kind: 'bool', help: 'skip fdatasync' },
    path: { kind: 'string', help: 'database path (default: a temporary file)' },
    work: { kind: 'bool', help: 'keep the database file' },
  },
  async run(p, io) {
    const count = num(p.flags.count);
    const batch = num(p.flags['batch-size']) || count;
    const ks = num(p.flags['key-size']);
    const vs = num(p.flags['value-size']);
    const wm = str(p.flags['write-mode']);
    const rm = str(p.flags['read-mode']);
    if (count <= 0) throw usage('--count must be > 0');
    if (count % batch !== 0) throw usage('number of iterations must be divisible by the batch size');
    if (ks < 4 || vs < 0) throw usage('--key-size must be >= 4 and --value-size >= 0');
    if (wm !== 'seq' && wm !== 'rnd') throw usage(`unsupported write mode: ${wm}`);
    if (rm !== 'seq' && rm !== 'rnd') throw usage(`unsupported read mode: ${rm}`);
    const path =
      str(p.flags.path) || join((await import('node:os')).tmpdir(), `boltkv-bench-${process.pid}-${Date.now()}.db`);
    if (existsSync(path) && !str(p.flags.path)) throw usage(`bench file exists: ${path}`);
    const keyOf = (i: number): Uint8Array => {
      const k = new Uint8Array(ks);
      new DataView(k.buffer).setUint32(ks - 4, i);
      return k;
    };
    const order = [...Array(count).keys()];
    if (wm === 'rnd') shuffle(order);
    const value = new Uint8Array(vs);
    const bar = progressBar(io, 'bench');
    const db = open(path, { noSync: bool(p.flags['no-sync']) });
    let writeMs: number;
    let readMs: number;
    let reads = 0;
    try {
      const t0 = performance.now();
      for (let i = 0; i < count; i += batch) {
        await db.updateAsync((tx) => {
          const b = tx.createBucketIfNotExists('bench');
          b.fillPercent = num(p.flags['fill-percent']);
          for (let j = i; j < i + batch; j++) b.put(keyOf(order[j]!), value);
        });
        bar.update(i + batch, count);
      }
      writeMs = performance.now() - t0;
      const readOrder = rm === 'rnd' ? shuffle([...order]) : [...order].sort((a, b) => a - b);
      const t1 = performance.now();
      // Read for at least a second, as bbolt's bench does, so the figure is stable.
      do {
        db.view((tx) => {
          const b = tx.bucket('bench')!;
          if (rm === 'seq') {
            for (const [, v] of b)
              if (v === null || v.length !== vs) throw new CliError('ERR_CORRUPT', 'invalid value');
          } else {
            for (const i of readOrder)
              if (b.get(keyOf(i))?.length !== vs) throw new CliError('ERR_CORRUPT', 'invalid value');
          }
        });
        reads += count;
      } while (performance.now() - t1 < 1000);
      readMs = performance.now() - t1;
    } finally {
      bar.done();
      db.close();
      if (!bool(p.flags.work)) rmSync(path, { force: true });
    }
    const r = {
      write: {
        ms: writeMs,
        ops: count,
        nsPerOp: (writeMs * 1e6) / count,
        opsPerSec: Math.round((count * 1000) / writeMs),
      },
      read: { ms: readMs, ops: reads, nsPerOp: (readMs * 1e6) / reads, opsPerSec: Math.round((reads * 1000) / readMs) },
    };
    const w = writeOutOf(p.flags['write-out']);
    if (w === 'json') return void io.out(`${json(r)}\n`);
    if (w === 'table') {
      return void io.out(
        `${table(
          ['phase', 'time', 'per op', 'ops/sec'],
          [
            ['write', `${r.write.ms.toFixed(1)}ms`, `${r.write.nsPerOp.toFixed(0)}ns`, String(r.write.opsPerSec)],
            ['read', `${r.read.ms.toFixed(1)}ms`, `${r.read.nsPerOp.toFixed(0)}ns`, String(r.read.opsPerSec)],
          ],
        )}\n`,
      );
    }
    io.out(
      `# Write\t${r.write.ms.toFixed(3)}ms\t(${r.write.nsPerOp.toFixed(0)}ns/op)\t(${r.write.opsPerSec} op/sec)\n`,
    );
    io.out(`# Read\t${r.read.ms.toFixed(3)}ms\t(${r.read.nsPerOp.toFixed(0)}ns/op)\t(${r.read.opsPerSec} op/sec)\n`);
    if (bool(p.flags.work)) io.out(`# Database: ${path}\n`);
  },
};

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
