/**
 * An in-memory FileSystem that behaves like a disk with a volatile write cache, for crash-safety
 * tests of the engine. Writes and truncates land in the cache (visible to reads at once) and become
 * durable only on sync(). At any moment a crash image can be taken: the durable bytes plus none,
 * all, or a random subset of the unsynced operations, optionally with one write torn (only a prefix
 * persisted). Any call can be made to fail, or to "crash the machine", at the Nth matching call.
 * Everything random is drawn from a seeded Rng, so a failing case replays from its numbers.
 */
import { BoltError } from '../../src/bolt/errors.ts';
import type { FileIO, FileSystem, OpenFileOptions } from '../../src/bolt/file.ts';
import { Rng } from './rng.ts';

/** The calls that are counted and can be made to fail. */
export type FaultOp =
  | 'open'
  | 'create'
  | 'read'
  | 'write'
  | 'writev'
  | 'writevAsync'
  | 'sync'
  | 'syncAsync'
  | 'size'
  | 'truncate'
  | 'tryLock'
  | 'unlock'
  | 'close'
  | 'rename'
  | 'remove';

export const ALL_OPS: readonly FaultOp[] = [
  'open',
  'create',
  'read',
  'write',
  'writev',
  'writevAsync',
  'sync',
  'syncAsync',
  'size',
  'truncate',
  'tryLock',
  'unlock',
  'close',
  'rename',
  'remove',
];

/** Calls that change what the disk holds or makes durable: the interesting crash points. */
export const MUTATING_OPS: readonly FaultOp[] = [
  'create',
  'write',
  'writev',
  'writevAsync',
  'sync',
  'syncAsync',
  'truncate',
  'rename',
  'remove',
];

/**
 * What survives a crash:
 * - `process`: the process died but the OS did not; every write made so far is kept.
 * - `drop`: power loss; only what was synced survives.
 * - `subset`: power loss with a reordering disk; a random subset of the unsynced operations survives.
 * - `tear`: like `subset`, and one unsynced write is torn: only a random prefix of it persisted
 *   (biased towards short prefixes, so headers and meta fields get cut too).
 */
export type CrashMode = 'process' | 'drop' | 'subset' | 'tear';
export const CRASH_MODES: readonly CrashMode[] = ['process', 'drop', 'subset', 'tear'];

export interface FaultRule {
  /** 'fail': the call throws ERR_IO and has no effect. 'crash': the machine dies at this call. */
  action: 'fail' | 'crash';
  /** 1-based index among the matching calls made after the rule was added. */
  at: number;
  /** Which calls count; default: all of them. */
  ops?: readonly FaultOp[];
  /** For 'fail': how many consecutive matching calls fail (default 1; Infinity = for good). */
  times?: number;
}

type PendingOp =
  /** `run`: the writes of one vectored call share a number, so a tear can cut across its buffers. */
  { kind: 'write'; pos: number; data: Uint8Array; run?: number } | { kind: 'truncate'; size: number };

/** A growable byte array: the bytes of one file in one state (cached or durable). */
class Bytes {
  buf: Uint8Array;
  length: number;
  constructor(init?: Uint8Array) {
    this.buf = new Uint8Array(Math.max(4096, init?.length ?? 0));
    this.length = 0;
    if (init) {
      this.buf.set(init);
      this.length = init.length;
    }
  }
  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  write(pos: number, data: Uint8Array): void {
    const end = pos + data.length;
    this.ensure(end);
    // Bytes between the old end and pos read as zeros, like a sparse file.
    if (pos > this.length) this.buf.fill(0, this.length, pos);
    this.buf.set(data, pos);
    if (end > this.length) this.length = end;
  }
  truncate(size: number): void {
    if (size > this.length) {
      this.ensure(size);
      this.buf.fill(0, this.length, size);
    }
    this.length = size;
  }
  apply(op: PendingOp): void {
    if (op.kind === 'write') this.write(op.pos, op.data);
    else this.truncate(op.size);
  }
  snapshot(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

interface DiskFile {
  cached: Bytes;
  durable: Bytes;
  pending: PendingOp[];
  exclusive: FaultyFile | null;
  shared: Set<FaultyFile>;
}

interface ActiveRule {
  rule: FaultRule;
  seen: number;
  failuresLeft: number;
}

function checkPosition(op: string, position: number, length = 0): void {
  if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(position + length)) {
    throw new BoltError('ERR_IO', `${op}: invalid position ${position}`);
  }
}

/** The disk: a set of files plus the fault schedule. `disk.fs` is what the engine is given. */
export class FaultyDisk {
  readonly fs: FileSystem;
  private readonly files = new Map<string, DiskFile>();
  private readonly rules: ActiveRule[] = [];
  private readonly counts = new Map<FaultOp, number>();
  private crashedAt: { call: number; op: FaultOp } | null = null;
  /** Every counted call, in order, as "op path"; handy in failure messages. */
  readonly trace: string[] = [];
  /** Vectored writes seen, numbering their runs of pending writes. */
  runs = 0;
  readonly seed: number;

  /** A lying disk: sync() returns without making anything durable (to prove tests notice). */
  readonly ignoreSync: boolean;

  constructor(
    options: {
      seed?: number;
      files?: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>;
      ignoreSync?: boolean;
    } = {},
  ) {
    this.seed = options.seed ?? 1;
    this.ignoreSync = options.ignoreSync ?? false;
    this.rng = new Rng((this.seed * 0x2545f491) >>> 0);
    const entries = options.files instanceof Map ? [...options.files] : Object.entries(options.files ?? {});
    for (const [path, bytes] of entries) this.files.set(path, newFile(bytes));
    this.fs = {
      open: (path: string, opts: OpenFileOptions): FileIO => this.open(path, opts),
      exists: (path: string): boolean => this.files.has(path),
      // Directory changes are atomic and durable at once (a rename followed by a directory fsync).
      rename: (from: string, to: string): void => {
        this.enter('rename', from);
        const f = this.file(from);
        this.files.delete(from);
        this.files.set(to, f);
      },
      remove: (path: string): void => {
        this.enter('remove', path);
        this.files.delete(path);
      },
      create: (path: string, data: Uint8Array): boolean => this.create(path, data),
      // A handle is current while its path still names the same file (not removed or renamed over).
      isCurrent: (path: string, file: FileIO): boolean =>
        file instanceof FaultyFile && this.files.get(path) === file.inode,
    };
  }

  /** Number of counted calls so far, of the given kinds (default all). */
  count(ops: readonly FaultOp[] = ALL_OPS): number {
    let n = 0;
    for (const op of ops) n += this.counts.get(op) ?? 0;
    return n;
  }

  /** Schedule a failure or a crash at the Nth matching call from now. */
  addRule(rule: FaultRule): void {
    if (!Number.isInteger(rule.at) || rule.at < 1) throw new RangeError(`rule.at must be >= 1, got ${rule.at}`);
    this.rules.push({ rule, seen: 0, failuresLeft: rule.times ?? 1 });
  }

  failAt(at: number, options: { ops?: readonly FaultOp[]; times?: number } = {}): void {
    this.addRule({ action: 'fail', at, ...options });
  }

  crashAt(at: number, options: { ops?: readonly FaultOp[] } = {}): void {
    this.addRule({ action: 'crash', at, ...options });
  }

  clearRules(): void {
    this.rules.length = 0;
  }

  /** Kill the machine now: every later call throws. */
  crash(): void {
    this.crashedAt ??= { call: this.count(), op: 'close' };
  }

  get crashed(): boolean {
    return this.crashedAt !== null;
  }

  /** Where the crash happened (global call number and op), if it did. */
  get crashPoint(): { call: number; op: FaultOp } | null {
    return this.crashedAt;
  }

  paths(): string[] {
    return [...this.files.keys()];
  }

  /** Current (cached) bytes of a file: what a reader sees now. */
  contents(path: string): Uint8Array {
    return this.file(path).cached.snapshot();
  }

  /** Only the synced bytes of a file. */
  durableContents(path: string): Uint8Array {
    return this.file(path).durable.snapshot();
  }

  /** Number of unsynced operations on a file. */
  pendingCount(path: string): number {
    return this.file(path).pending.length;
  }

  /** Replace a file's bytes outright (durable and cached), e.g. to plant a corrupt image. */
  setContents(path: string, bytes: Uint8Array): void {
    const prev = this.files.get(path);
    const f = newFile(bytes);
    if (prev) {
      f.exclusive = prev.exclusive;
      f.shared = prev.shared;
    }
    this.files.set(path, f);
  }

  /**
   * The bytes each file would hold after a crash now, in the given mode. Pure: the disk is not
   * changed, and the same (mode, seed) gives the same image.
   */
  crashImage(mode: CrashMode, seed = 0): Map<string, Uint8Array> {
    const rng = new Rng((this.seed * 0x9e3779b1 + seed * 0x85ebca6b + modeSalt(mode)) >>> 0);
    const out = new Map<string, Uint8Array>();
    for (const [path, f] of this.files) {
      if (mode === 'process') {
        out.set(path, f.cached.snapshot());
        continue;
      }
      const img = new Bytes(f.durable.snapshot());
      if (mode === 'subset' || mode === 'tear') {
        let torn = -1;
        if (mode === 'tear') {
          const writes = f.pending.flatMap((op, i) => (op.kind === 'write' && op.data.length > 1 ? [i] : []));
          if (writes.length > 0) torn = rng.pick(writes);
        }
        // A torn vectored write persists as a prefix of the whole run, half the time: the buffers
        // before the cut land, the one at the cut lands in part, the ones after it are lost.
        const tornOp = torn >= 0 ? f.pending[torn] : undefined;
        const tornRun = tornOp?.kind === 'write' && tornOp.run !== undefined && rng.bool() ? tornOp.run : undefined;
        f.pending.forEach((op, i) => {
          if (tornRun !== undefined && op.kind === 'write' && op.run === tornRun && i !== torn) {
            if (i < torn) img.apply(op);
          } else if (i === torn && op.kind === 'write') {
            // Half the time tear within the first 128 bytes, where page headers and the meta
            // fields live; a uniform cut over a 4 KiB page would almost never hit them.
            const max = rng.bool() ? Math.min(op.data.length - 1, 128) : op.data.length - 1;
            img.write(op.pos, op.data.subarray(0, rng.int(1, max)));
          } else if (rng.bool()) {
            img.apply(op);
          }
        });
      }
      out.set(path, img.snapshot());
    }
    return out;
  }

  /** A fresh disk (no rules, no counts) holding the crash image: "power back on". */
  reboot(mode: CrashMode, seed = 0): FaultyDisk {
    return new FaultyDisk({ seed: (this.seed + seed + 1) >>> 0, files: this.crashImage(mode, seed) });
  }

  // ---- internals used by FaultyFile ----

  /** Count a call and apply the schedule; throws when the call must fail. */
  enter(op: FaultOp, path: string, inFlight?: () => void): void {
    if (this.crashedAt) throw new BoltError('ERR_IO', `${op} ${path}: machine crashed at call #${this.crashedAt.call}`);
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    const call = this.count();
    this.trace.push(`${op} ${path}`);
    for (const r of this.rules) {
      if (r.rule.ops && !r.rule.ops.includes(op)) continue;
      r.seen++;
      if (r.rule.action === 'crash') {
        if (r.seen === r.rule.at) {
          // The call was issued when the power went: a write may still reach the disk (or part of it).
          inFlight?.();
          this.crashedAt = { call, op };
          throw new BoltError('ERR_IO', `${op} ${path}: machine crashed (call #${call})`);
        }
      } else if (r.seen >= r.rule.at && r.failuresLeft > 0) {
        r.failuresLeft--;
        throw new BoltError('ERR_IO', `${op} ${path}: injected I/O error (call #${call})`);
      }
    }
  }

  file(path: string): DiskFile {
    const f = this.files.get(path);
    if (!f) throw new BoltError('ERR_IO', `no such file: ${path}`);
    return f;
  }

  /**
   * Atomic, durable, no-replace creation (what nodeFileSystem.create promises): a crash at this
   * call leaves either no file or the whole file (the call may have completed as the power went).
   */
  private create(path: string, data: Uint8Array): boolean {
    const copy = data.slice();
    const land = (): void => {
      if (!this.files.has(path)) this.files.set(path, newFile(copy));
    };
    this.enter('create', path, () => {
      if (this.rng.bool()) land();
    });
    if (this.files.has(path)) return false;
    land();
    return true;
  }

  private readonly rng: Rng;

  private open(path: string, opts: OpenFileOptions): FileIO {
    this.enter('open', path);
    let f = this.files.get(path);
    if (!f) {
      if (opts.readOnly) throw new BoltError('ERR_IO', `open ${path}: ENOENT: no such file or directory`);
      // Creating the directory entry is treated as durable at once.
      f = newFile(new Uint8Array(0));
      this.files.set(path, f);
    }
    return new FaultyFile(this, path, opts.readOnly);
  }
}

function newFile(bytes: Uint8Array): DiskFile {
  return { cached: new Bytes(bytes), durable: new Bytes(bytes), pending: [], exclusive: null, shared: new Set() };
}

function modeSalt(mode: CrashMode): number {
  return CRASH_MODES.indexOf(mode) * 0x27d4eb2f;
}

/** One open handle on a FaultyDisk file. */
export class FaultyFile implements FileIO {
  private closed = false;
  constructor(
    private readonly disk: FaultyDisk,
    readonly path: string,
    readonly readOnly: boolean,
    /** The file itself (an inode): a rename or remove of its path does not affect this handle. */
    readonly inode: DiskFile = disk.file(path),
  ) {}

  private get f(): DiskFile {
    return this.inode;
  }

  private live(op: string): void {
    if (this.closed) throw new BoltError('ERR_IO', `${op} ${this.path}: file is closed`);
  }

  private writable(op: string): void {
    if (this.readOnly) throw new BoltError('ERR_IO', `${op} ${this.path}: EBADF: file opened read-only`);
  }

  read(buf: Uint8Array, position: number): number {
    this.live('read');
    this.disk.enter('read', this.path);
    checkPosition('read', position);
    const c = this.f.cached;
    if (position >= c.length) return 0;
    const n = Math.min(buf.length, c.length - position);
    buf.set(c.buf.subarray(position, position + n));
    return n;
  }

  write(buf: Uint8Array, position: number): void {
    this.put([buf], position, 'write');
  }

  writev(bufs: readonly Uint8Array[], position: number): void {
    this.put(bufs, position, 'writev');
  }

  /**
   * Counted (and failed or crashed) when issued, like a real one; the bytes land a macrotask
   * later, copied then, so an engine that changes a buffer after handing it over writes the changed
   * bytes (and its tests see it). A write still in flight when the machine crashes is lost.
   */
  writevAsync(bufs: readonly Uint8Array[], position: number): Promise<void> {
    try {
      this.live('writevAsync');
      let total = 0;
      for (const b of bufs) total += b.length;
      checkPosition('writevAsync', position, total);
      this.disk.enter('writevAsync', this.path, this.readOnly ? undefined : () => this.land(bufs, position, true));
      this.writable('writevAsync');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve) =>
      setImmediate(() => {
        if (!this.disk.crashed) this.land(bufs, position, true);
        resolve();
      }),
    );
  }

  private land(bufs: readonly Uint8Array[], position: number, vectored: boolean): void {
    const run = vectored && bufs.length > 1 ? ++this.disk.runs : undefined;
    const f = this.f;
    let pos = position;
    for (const b of bufs) {
      if (b.length > 0) {
        const o: PendingOp =
          run === undefined ? { kind: 'write', pos, data: b.slice() } : { kind: 'write', pos, data: b.slice(), run };
        f.cached.apply(o);
        f.pending.push(o);
      }
      pos += b.length;
    }
  }

  private put(bufs: readonly Uint8Array[], position: number, op: 'write' | 'writev'): void {
    this.live(op);
    let total = 0;
    for (const b of bufs) total += b.length;
    checkPosition(op, position, total);
    // Copy now: the caller may reuse its buffers once the call returns.
    const ops: PendingOp[] = [];
    let pos = position;
    const run = op === 'writev' && bufs.length > 1 ? ++this.disk.runs : undefined;
    for (const b of bufs) {
      if (b.length > 0)
        ops.push(
          run === undefined ? { kind: 'write', pos, data: b.slice() } : { kind: 'write', pos, data: b.slice(), run },
        );
      pos += b.length;
    }
    const land = (): void => {
      const f = this.f;
      for (const o of ops) {
        f.cached.apply(o);
        f.pending.push(o);
      }
    };
    this.disk.enter(op, this.path, this.readOnly ? undefined : land);
    this.writable(op);
    land();
  }

  sync(): void {
    this.live('sync');
    this.disk.enter('sync', this.path);
    this.flush();
  }

  syncAsync(): Promise<void> {
    try {
      this.live('syncAsync');
      this.disk.enter('syncAsync', this.path);
      this.flush();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private flush(): void {
    if (this.disk.ignoreSync) return;
    const f = this.f;
    for (const op of f.pending) f.durable.apply(op);
    f.pending.length = 0;
  }

  size(): number {
    this.live('size');
    this.disk.enter('size', this.path);
    return this.f.cached.length;
  }

  truncate(size: number): void {
    this.live('truncate');
    checkPosition('truncate', size);
    const op: PendingOp = { kind: 'truncate', size };
    const land = (): void => {
      this.f.cached.apply(op);
      this.f.pending.push(op);
    };
    this.disk.enter('truncate', this.path, this.readOnly ? undefined : land);
    this.writable('truncate');
    land();
  }

  tryLock(exclusive: boolean): boolean {
    this.live('tryLock');
    this.disk.enter('tryLock', this.path);
    const f = this.f;
    const othersShared = [...f.shared].some((h) => h !== this);
    const otherExclusive = f.exclusive !== null && f.exclusive !== this;
    if (otherExclusive || (exclusive && othersShared)) return false;
    // Like flock: taking one kind of lock converts the other.
    f.shared.delete(this);
    if (f.exclusive === this) f.exclusive = null;
    if (exclusive) f.exclusive = this;
    else f.shared.add(this);
    return true;
  }

  unlock(): void {
    this.live('unlock');
    this.disk.enter('unlock', this.path);
    this.release();
  }

  close(): void {
    if (this.closed) return;
    this.disk.enter('close', this.path);
    this.closed = true;
    this.release();
  }

  private release(): void {
    const f = this.f;
    f.shared.delete(this);
    if (f.exclusive === this) f.exclusive = null;
  }
}
