import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { BoltkvError } from '../errors.ts';
import { BoltError } from './errors.ts';
import type { FileIO, FileSystem, OpenFileOptions } from './file.ts';

type FlockKind = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
interface FsExt {
  flockSync(fd: number, flags: FlockKind): void;
}
const require = createRequire(import.meta.url);
let fsExt: FsExt | undefined;
function flock(): FsExt {
  fsExt ??= require('fs-ext-extra-prebuilt') as FsExt;
  return fsExt;
}

function ioError(op: string, err: unknown): BoltError {
  const msg = err instanceof Error ? err.message : String(err);
  return new BoltError('ERR_IO', `${op}: ${msg}`, { cause: err });
}

/** FileIO over a real file descriptor: positional reads and writes, fdatasync, flock. */
export class NodeFile implements FileIO {
  private fd: number;
  constructor(fd: number) {
    this.fd = fd;
  }
  read(buf: Uint8Array, position: number): number {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.readSync(this.fd, buf, done, buf.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw ioError('read', err);
    }
    return done;
  }
  write(buf: Uint8Array, position: number): void {
    try {
      let done = 0;
      while (done < buf.length) {
        done += fs.writeSync(this.fd, buf, done, buf.length - done, position + done);
      }
    } catch (err) {
      throw ioError('write', err);
    }
  }
  writev(bufs: readonly Uint8Array[], position: number): void {
    let total = 0;
    for (const b of bufs) total += b.length;
    try {
      const written = fs.writevSync(this.fd, bufs as Uint8Array[], position);
      if (written !== total) this.finishWritev(bufs, position, written);
    } catch (err) {
      if (err instanceof BoltkvError) throw err;
      throw ioError('writev', err);
    }
  }
  writevAsync(bufs: readonly Uint8Array[], position: number): Promise<void> {
    let total = 0;
    for (const b of bufs) total += b.length;
    return new Promise((resolve, reject) => {
      fs.writev(this.fd, bufs as Uint8Array[], position, (err, written) => {
        if (err) return reject(ioError('writev', err));
        if (written === total) return resolve();
        // Finished on the event loop (rare: regular files write whole).
        try {
          this.finishWritev(bufs, position, written);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }
  /** After a short vectored write of `written` bytes: the rest, buffer by buffer. */
  private finishWritev(bufs: readonly Uint8Array[], position: number, written: number): void {
    let skip = written;
    let pos = position;
    for (const b of bufs) {
      if (skip >= b.length) skip -= b.length;
      else {
        this.write(b.subarray(skip), pos + skip);
        skip = 0;
      }
      pos += b.length;
    }
  }
  sync(): void {
    try {
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      throw ioError('fdatasync', err);
    }
  }
  syncAsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (err) => (err ? reject(ioError('fdatasync', err)) : resolve()));
    });
  }
  size(): number {
    try {
      return fs.fstatSync(this.fd).size;
    } catch (err) {
      throw ioError('fstat', err);
    }
  }
  truncate(size: number): void {
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (err) {
      throw ioError('ftruncate', err);
    }
  }
  tryLock(exclusive: boolean): boolean {
    try {
      flock().flockSync(this.fd, exclusive ? 'exnb' : 'shnb');
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
      throw ioError('flock', err);
    }
  }
  unlock(): void {
    try {
      flock().flockSync(this.fd, 'un');
    } catch {
      // Closing the descriptor drops the lock anyway.
    }
  }
  /** Device and inode of the open descriptor, to tell whether the path still names this file. */
  identity(): { dev: number; ino: number } {
    try {
      const st = fs.fstatSync(this.fd);
      return { dev: st.dev, ino: st.ino };
    } catch (err) {
      throw ioError('fstat', err);
    }
  }
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw ioError('close', err);
    }
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** fsync a directory so a new entry in it survives power loss; a no-op where directories cannot be synced. */
function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = errno(err);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF')
      throw ioError(`fsync ${dir}`, err);
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, done);
}

export const nodeFileSystem: FileSystem = {
  open(path: string, options: OpenFileOptions): FileIO {
    try {
      // Never 'w' or 'w+': opening must not truncate a file another process may be using.
      return new NodeFile(fs.openSync(path, options.readOnly ? 'r' : 'r+', options.mode));
    } catch (err) {
      throw ioError(`open ${path}`, err);
    }
  },
  exists(path: string): boolean {
    return fs.existsSync(path);
  },
  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (err) {
      throw ioError(`rename ${from}`, err);
    }
    // Make the rename itself durable: fsync the directory (where the platform allows it).
    let fd: number | undefined;
    try {
      fd = fs.openSync(dirname(to), 'r');
      fs.fsyncSync(fd);
    } catch {
      // not supported here; the rename is still atomic
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  remove(path: string): void {
    try {
      fs.rmSync(path, { force: true });
    } catch (err) {
      throw ioError(`remove ${path}`, err);
    }
  },
  /**
   * Write the image to a temporary file beside `path`, fsync it, hard-link it to `path` (which,
   * unlike rename, fails rather than replaces when `path` exists), drop the temporary name and
   * fsync the directory. Where hard links are unsupported, an exclusive create written in place
   * is the fallback; open() recognises such a file left half-written and re-initialises it.
   */
  create(path: string, data: Uint8Array, mode: number): boolean {
    if (fs.existsSync(path)) return false;
    const dir = dirname(path);
    const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.creating`);
    let fd = -1;
    let linked = false;
    try {
      fd = fs.openSync(tmp, 'wx', mode);
      writeAll(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = -1;
      try {
        fs.linkSync(tmp, path);
        linked = true;
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') return false;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EMLINK')
          throw err;
      }
      if (!linked) {
        try {
          fd = fs.openSync(path, 'wx', mode);
        } catch (err) {
          if (errno(err) === 'EEXIST') return false;
          throw err;
        }
        writeAll(fd, data);
        fs.fsyncSync(fd);
      }
    } catch (err) {
      throw ioError(`create ${path}`, err);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Never created, or already gone: nothing to clean up.
      }
    }
    syncDir(dir);
    return true;
  },
  isCurrent(path: string, file: FileIO): boolean {
    if (!(file instanceof NodeFile)) return true;
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw ioError(`stat ${path}`, err);
    }
    const id = file.identity();
    return st.dev === id.dev && st.ino === id.ino;
  },
};
