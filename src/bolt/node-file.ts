import fs from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
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
      let written = fs.writevSync(this.fd, bufs as Uint8Array[], position);
      if (written === total) return;
      // Short vectored write: finish the rest buffer by buffer.
      let pos = position;
      for (const b of bufs) {
        const end = pos + b.length;
        if (written < end - position) {
          const skip = Math.max(0, position + written - pos);
          this.write(b.subarray(skip), pos + skip);
          written = end - position;
        }
        pos = end;
      }
    } catch (err) {
      if (err instanceof BoltkvError) throw err;
      throw ioError('writev', err);
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

export const nodeFileSystem: FileSystem = {
  open(path: string, options: OpenFileOptions): FileIO {
    try {
      const flags = options.readOnly ? 'r' : fs.existsSync(path) ? 'r+' : 'w+';
      return new NodeFile(fs.openSync(path, flags, options.mode));
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
};
