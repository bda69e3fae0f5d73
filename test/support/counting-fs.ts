import { nodeFileSystem, type FileIO, type FileSystem } from '../../src/bolt/index.ts';

/** What a file layer was asked to do: fdatasyncs (blocking or not), write calls and bytes written. */
export interface IoCount {
  syncs: number;
  writes: number;
  bytes: number;
}

/** The real file layer, counting into `c` every file it opens (tests and benches that count I/O). */
export function countingFileSystem(c: IoCount): FileSystem {
  return {
    ...nodeFileSystem,
    open(path, options): FileIO {
      const f = nodeFileSystem.open(path, options);
      const wrote = (bs: readonly Uint8Array[]): void => {
        c.writes++;
        for (const b of bs) c.bytes += b.length;
      };
      return {
        read: (b, p) => f.read(b, p),
        write: (b, p) => {
          wrote([b]);
          f.write(b, p);
        },
        writev: (bs, p) => {
          wrote(bs);
          f.writev(bs, p);
        },
        writevAsync: (bs, p) => {
          wrote(bs);
          return f.writevAsync!(bs, p);
        },
        sync: () => {
          c.syncs++;
          f.sync();
        },
        syncAsync: () => {
          c.syncs++;
          return f.syncAsync();
        },
        size: () => f.size(),
        truncate: (n) => f.truncate(n),
        tryLock: (x) => f.tryLock(x),
        unlock: () => f.unlock(),
        close: () => f.close(),
      };
    },
  };
}
