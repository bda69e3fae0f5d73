/**
 * The peer engines boltkv's engine benchmark measures itself against, each wrapped in the adapter
 * interface of bench/lib/engine-workloads.ts. They live in bench/peers/ with their own
 * package.json so boltkv's own install never pulls native peers in:
 *
 *   npm --prefix bench/peers install
 *
 * The packages are loaded with import() of a computed name and described by the narrow interfaces
 * below (only what the benchmark calls), so the project type-checks on a clone where they are not
 * installed. Every peer is configured so that "done" means durable, as it does for boltkv:
 * - lmdb: overlappingSync off, so a commit returns (or its promise resolves) after the sync;
 * - classic-level: `sync: true` on every write;
 * - better-sqlite3: WAL journal with synchronous=FULL (one fsync of the log per commit).
 */
import { join } from 'node:path';
import type { EngineHandle, EngineUnderTest, Reader } from '../lib/engine-workloads.ts';
import { keyOf, valueOf } from '../lib/engine-workloads.ts';

// ---- the slices of the peers' APIs we use ----

interface LmdbDatabase {
  get(key: Uint8Array): Uint8Array | undefined;
  getRange(options: { start: Uint8Array; limit: number }): Iterable<{ key: Uint8Array; value: Uint8Array }>;
  put(key: Uint8Array, value: Uint8Array): Promise<boolean>;
  putSync(key: Uint8Array, value: Uint8Array): boolean;
  transactionSync<T>(fn: () => T): T;
  close(): Promise<void>;
}
interface LmdbModule {
  open(options: {
    path: string;
    keyEncoding: 'binary';
    encoding: 'binary';
    overlappingSync: boolean;
    compression: boolean;
  }): LmdbDatabase;
}

interface LevelIterator {
  nextv(size: number): Promise<Array<[Uint8Array, Uint8Array]>>;
  close(): Promise<void>;
}
interface LevelDatabase {
  open(): Promise<void>;
  put(key: Uint8Array, value: Uint8Array, options: { sync: boolean }): Promise<void>;
  batch(ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array }>, options: { sync: boolean }): Promise<void>;
  getSync(key: Uint8Array): Uint8Array | undefined;
  iterator(options: { gte: Uint8Array; limit: number }): LevelIterator;
  close(): Promise<void>;
}
interface ClassicLevelModule {
  ClassicLevel: new (
    location: string,
    options: { keyEncoding: 'view'; valueEncoding: 'view'; compression: boolean },
  ) => LevelDatabase;
}

interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  iterate(...params: unknown[]): IterableIterator<unknown>;
  pluck(on?: boolean): SqliteStatement;
  raw(on?: boolean): SqliteStatement;
}
interface SqliteDatabase {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}
interface BetterSqliteModule {
  default: new (path: string) => SqliteDatabase;
}

/** import() of a computed specifier: resolved from this directory's node_modules, untyped on purpose. */
async function load<T>(name: string): Promise<T> {
  return (await import(name)) as T;
}

// ---- lmdb ----

function lmdbSystem(mod: LmdbModule): EngineUnderTest {
  return {
    name: 'lmdb',
    settings: 'lmdb-js, binary keys/values, overlappingSync off (commit returns after sync), no compression',
    apis: {
      load1: 'transactionSync',
      loadChunk: 'transactionSync',
      get: 'db.get',
      range: 'db.getRange({start, limit})',
      putDurable: 'db.putSync',
      putBatched: "await db.put (lmdb-js batches a turn's writes)",
    },
    async open(dir: string): Promise<EngineHandle> {
      const db = mod.open({
        path: join(dir, 'bench.mdb'),
        keyEncoding: 'binary',
        encoding: 'binary',
        overlappingSync: false,
        compression: false,
      });
      return {
        putTxn(order, lo, hi) {
          db.transactionSync(() => {
            for (let i = lo; i < hi; i++) {
              const k = order[i]!;
              db.putSync(keyOf(k), valueOf(k));
            }
          });
        },
        reader(): Reader {
          return {
            get: (k) => db.get(k),
            range(start, n) {
              let seen = 0;
              for (const _ of db.getRange({ start, limit: n })) seen++;
              return seen;
            },
            end() {},
          };
        },
        putDurable(k, v) {
          db.putSync(k, v);
        },
        async putBatched(k, v) {
          await db.put(k, v);
        },
        close: () => db.close(),
      };
    },
  };
}

// ---- classic-level (LevelDB) ----

function levelSystem(mod: ClassicLevelModule): EngineUnderTest {
  return {
    name: 'classic-level',
    settings: 'LevelDB via classic-level, sync: true on every write, snappy compression off',
    apis: {
      load1: 'db.batch (one batch), sync',
      loadChunk: 'db.batch, sync',
      get: 'db.getSync',
      range: 'iterator({gte, limit}).nextv(100) (async)',
      putDurable: 'await db.put(k, v, {sync: true})',
      putBatched: 'await db.put(k, v, {sync: true}) (LevelDB groups concurrent writers)',
    },
    async open(dir: string): Promise<EngineHandle> {
      const db = new mod.ClassicLevel(join(dir, 'bench.leveldb'), {
        keyEncoding: 'view',
        valueEncoding: 'view',
        compression: false,
      });
      await db.open();
      return {
        async putTxn(order, lo, hi) {
          const ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array }> = [];
          for (let i = lo; i < hi; i++) {
            const k = order[i]!;
            ops.push({ type: 'put', key: keyOf(k), value: valueOf(k) });
          }
          await db.batch(ops, { sync: true });
        },
        reader(): Reader {
          return {
            get: (k) => db.getSync(k),
            async range(start, n) {
              const it = db.iterator({ gte: start, limit: n });
              try {
                return (await it.nextv(n)).length;
              } finally {
                await it.close();
              }
            },
            end() {},
          };
        },
        putDurable: (k, v) => db.put(k, v, { sync: true }),
        putBatched: (k, v) => db.put(k, v, { sync: true }),
        close: () => db.close(),
      };
    },
  };
}

// ---- better-sqlite3 ----

function sqliteSystem(mod: BetterSqliteModule): EngineUnderTest {
  return {
    name: 'better-sqlite3',
    settings: 'SQLite, WITHOUT ROWID table (k BLOB PRIMARY KEY, v BLOB), WAL, synchronous=FULL',
    apis: {
      load1: 'db.transaction of INSERT OR REPLACE',
      loadChunk: 'db.transaction of INSERT OR REPLACE',
      get: 'prepared SELECT v WHERE k = ?',
      range: 'prepared SELECT WHERE k >= ? ORDER BY k LIMIT 100',
      putDurable: 'INSERT OR REPLACE (autocommit)',
      putBatched: 'grouped per event-loop turn by the adapter (SQLite has no group commit)',
    },
    async open(dir: string): Promise<EngineHandle> {
      const db = new mod.default(join(dir, 'bench.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
      const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
      const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
      const range = db.prepare('SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?').raw();
      // better-sqlite3 binds Buffers (not plain Uint8Arrays) as blobs: wrap without copying.
      const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      const load = db.transaction((order: Uint32Array, lo: number, hi: number) => {
        for (let i = lo; i < hi; i++) {
          const k = order[i]!;
          put.run(buf(keyOf(k)), buf(valueOf(k)));
        }
      });
      let group: Array<{ k: Uint8Array; v: Uint8Array; done: () => void; fail: (e: unknown) => void }> = [];
      const commitGroup = db.transaction((calls: typeof group) => {
        for (const c of calls) put.run(buf(c.k), buf(c.v));
      });
      const flush = (): void => {
        const calls = group;
        group = [];
        try {
          commitGroup(calls);
          for (const c of calls) c.done();
        } catch (err) {
          for (const c of calls) c.fail(err);
        }
      };
      return {
        putTxn(order, lo, hi) {
          load(order, lo, hi);
        },
        reader(): Reader {
          return {
            get: (k) => get.get(buf(k)) as Uint8Array | undefined,
            range(start, n) {
              let seen = 0;
              for (const _ of range.iterate(buf(start), n)) seen++;
              return seen;
            },
            end() {},
          };
        },
        putDurable(k, v) {
          put.run(buf(k), buf(v));
        },
        putBatched(k, v) {
          return new Promise<void>((done, fail) => {
            if (group.length === 0) setImmediate(flush);
            group.push({ k, v, done, fail });
          });
        },
        close: () => db.close(),
      };
    },
  };
}

export interface Peers {
  systems: EngineUnderTest[];
  /** Peers that could not be loaded, with the reason (usually: not installed). */
  missing: Array<{ name: string; reason: string }>;
}

/** Loads whichever peers are installed in bench/peers/node_modules. */
export async function loadPeers(): Promise<Peers> {
  const systems: EngineUnderTest[] = [];
  const missing: Peers['missing'] = [];
  const tryLoad = async <T>(name: string, make: (m: T) => EngineUnderTest): Promise<void> => {
    try {
      systems.push(make(await load<T>(name)));
    } catch (err) {
      missing.push({ name, reason: err instanceof Error ? err.message.split('\n')[0]! : String(err) });
    }
  };
  await tryLoad<LmdbModule>('lmdb', lmdbSystem);
  await tryLoad<ClassicLevelModule>('classic-level', levelSystem);
  await tryLoad<BetterSqliteModule>('better-sqlite3', sqliteSystem);
  return { systems, missing };
}
