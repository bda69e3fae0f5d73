// Shared by the tests of where small commits' pages go (freelist-slack, freelist-lifetime): keys
// spread over the key space, 100-byte values, and the data writes a DB's commits make.
import type { open } from 'boltkv';

type DB = ReturnType<typeof open>;

/** Key i: a scrambled first half, so keys in index order land all over the tree. */
export const spreadKey = (i: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.imul(i, 0x9e3779b1) >>> 0, 0);
  b.writeUInt32BE(i, 4);
  return b;
};
export const value100 = (i: number): Buffer => Buffer.alloc(100, i & 0xff);

/** Data writes (not the meta's: pages 0 and 1) and the pages they carry, counted at this DB's file object. */
export function countDataWrites(db: DB): { writes: number; pages: number } {
  const c = { writes: 0, pages: 0 };
  const file = db.pager.file;
  const write = file.write.bind(file);
  const writev = file.writev.bind(file);
  file.write = (buf, position) => {
    if (position >= 2 * db.pageSize) {
      c.writes++;
      c.pages += buf.length / db.pageSize;
    }
    return write(buf, position);
  };
  file.writev = (bufs, position) => {
    c.writes++;
    for (const b of bufs) c.pages += b.length / db.pageSize;
    return writev(bufs, position);
  };
  return c;
}
