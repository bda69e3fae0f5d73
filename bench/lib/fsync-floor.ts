import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The disk's floor under any durable commit: two (write 4 KiB + fdatasync), a data page and then
 * the first page, on a file sized first so the timed syncs never persist a size change. Benches time
 * `step` their own way (a timing loop, or beside a system's puts) and call `close` when done.
 */
export interface FsyncFloor {
  step(): void;
  close(): void;
}

export function openFsyncFloor(dir: string): FsyncFloor {
  const path = join(dir, 'fsync-floor.bin');
  const fd = openSync(path, 'w+');
  const page = new Uint8Array(4096).fill(7);
  writeSync(fd, new Uint8Array(8192), 0, 8192, 0);
  fdatasyncSync(fd);
  return {
    step() {
      writeSync(fd, page, 0, 4096, 4096);
      fdatasyncSync(fd);
      writeSync(fd, page, 0, 4096, 0);
      fdatasyncSync(fd);
    },
    close() {
      closeSync(fd);
      rmSync(path, { force: true });
    },
  };
}
