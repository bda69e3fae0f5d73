/**
 * The puts a leaf still backed by its page holds aside (node.ts), kept as offsets into the bytes
 * the transaction copied them to, not as element objects. Each put used to be an element object,
 * a record and two Buffer views, all living until commit, so every scavenge in between copied
 * them (the collector was a quarter of a bulk load's samples); here a leaf's puts are three small
 * arrays, whatever their number.
 */
import { compareAt } from './bytes.ts';
import { copyBytes, Inode } from './inode.ts';
import { ELEMENT_SIZE } from './page.ts';

/** Numbers kept per put in `nums`: key pos, key length, value pos, value length, flags, src position, replaces. */
const W = 7;

export class HeldPuts {
  /** Where each put's key and value bytes are (usually the same transaction slab). */
  private readonly kbufs: Buffer[] = [];
  private readonly vbufs: Buffer[] = [];
  private readonly nums: number[] = [];
  /** How many puts insert a key (the others replace an element of the page). */
  inserts = 0;

  get length(): number {
    return this.kbufs.length;
  }

  /** The first put whose key is >= key, and whether it equals key (in `exact`). */
  find(key: Uint8Array, exact: { hit: boolean }): number {
    const n = this.kbufs.length;
    for (let j = 0; j < n; j++) {
      const c = this.compareKey(j, key);
      if (c >= 0) {
        exact.hit = c === 0;
        return j;
      }
    }
    exact.hit = false;
    return n;
  }

  /**
   * Hold a put at position j (key order): its key at kbuf[kpos, kpos + klen), value likewise; it
   * goes before element `at` of the page, or over it if `replaces`.
   */
  insert(
    j: number,
    kbuf: Buffer,
    kpos: number,
    klen: number,
    vbuf: Buffer,
    vpos: number,
    vlen: number,
    flags: number,
    at: number,
    replaces: boolean,
  ): void {
    this.kbufs.splice(j, 0, kbuf);
    this.vbufs.splice(j, 0, vbuf);
    this.nums.splice(j * W, 0, kpos, klen, vpos, vlen, flags, at, replaces ? 1 : 0);
    if (!replaces) this.inserts++;
  }

  /** Give put j a new value and flags; returns the old value's length. */
  replaceValue(j: number, vbuf: Buffer, vpos: number, vlen: number, flags: number): number {
    const b = j * W;
    const old = this.nums[b + 3]!;
    this.vbufs[j] = vbuf;
    this.nums[b + 2] = vpos;
    this.nums[b + 3] = vlen;
    this.nums[b + 4] = flags;
    return old;
  }

  /** The page element put j goes before (or over). */
  at(j: number): number {
    return this.nums[j * W + 5]!;
  }

  replaces(j: number): boolean {
    return this.nums[j * W + 6] === 1;
  }

  /** Puts that insert a key below key. */
  insertsBelow(key: Uint8Array): number {
    let n = 0;
    for (let j = 0; j < this.kbufs.length; j++) if (!this.replaces(j) && this.compareKey(j, key) < 0) n++;
    return n;
  }

  compareKey(j: number, key: Uint8Array): number {
    const b = j * W;
    return compareAt(this.kbufs[j]!, this.nums[b]!, this.nums[b + 1]!, key);
  }

  /** A view of put j's key. */
  key(j: number): Buffer {
    const b = j * W;
    const pos = this.nums[b]!;
    return this.kbufs[j]!.subarray(pos, pos + this.nums[b + 1]!);
  }

  /** Put j as an element object (for a leaf that builds its elements). */
  inode(j: number): Inode {
    const b = j * W;
    const nums = this.nums;
    const vpos = nums[b + 2]!;
    return new Inode(nums[b + 4]!, this.key(j), this.vbufs[j]!.subarray(vpos, vpos + nums[b + 3]!), 0, null);
  }

  /**
   * Write put j as leaf element header `e` of a page image (dv over buf) with its key and value at
   * `data`; returns the bytes of key and value written.
   */
  writeElement(j: number, buf: Uint8Array, dv: DataView, e: number, data: number): number {
    const b = j * W;
    const nums = this.nums;
    const klen = nums[b + 1]!;
    const vlen = nums[b + 3]!;
    dv.setUint32(e, nums[b + 4]!, true);
    dv.setUint32(e + 4, data - e, true);
    dv.setUint32(e + 8, klen, true);
    dv.setUint32(e + 12, vlen, true);
    copyBytes(buf, data, this.kbufs[j]!, nums[b]!, klen);
    copyBytes(buf, data + klen, this.vbufs[j]!, nums[b + 2]!, vlen);
    return klen + vlen;
  }

  /** Bytes put j takes in a page: element header, key and value. */
  size(j: number): number {
    const b = j * W;
    return ELEMENT_SIZE + this.nums[b + 1]! + this.nums[b + 3]!;
  }
}
