/**
 * An element of an in-memory node (bbolt's inode), and the small helpers that make and measure one.
 * Its own file because nodes, the page image writer (node-write.ts) and deleteWhere all use it.
 */
import { compare, compareAt } from './bytes.ts';
import { ELEMENT_SIZE, type Page } from './page.ts';
import type { Node } from './node.ts';

/**
 * One element of an in-memory node. Leaves use flags/key/value; branches use key/pgid/child,
 * where `child` is the materialized child node (new children have pgid 0 until written).
 * An element read from a page keeps its key and value as offsets into the page until someone
 * asks for them: a commit rewrites every node on the path to a change but looks at few of their
 * keys and values, and a view per element (a branch page holds ~170) was a good part of what a
 * small commit allocated.
 */
export class Inode {
  flags: number;
  /** The key's first four bytes as a big-endian number (zero padded): most comparisons end here. */
  prefix: number;
  /** Bytes this element takes in a page: element header, key and (leaf) value. */
  size: number;
  pgid: number;
  child: Node | null;
  /** The key, once made; else it is src.buf[kpos, kpos + klen). */
  private k: Buffer | null;
  /** The value, once made; else it is element `index` of src, at src.buf[vpos, vpos + vlen). */
  private v: Buffer | null;
  private src: Page | null;
  private index: number;
  private kpos: number;
  private klen: number;
  private vpos: number;
  private vlen: number;

  constructor(
    flags: number,
    key: Buffer | null,
    value: Buffer | null,
    pgid: number,
    child: Node | null,
    src: Page | null = null,
    index = 0,
    vpos = 0,
    vlen = 0,
    kpos = 0,
    klen = 0,
  ) {
    this.flags = flags;
    this.k = key;
    this.pgid = pgid;
    this.child = child;
    this.v = value;
    this.src = src;
    this.index = index;
    this.kpos = kpos;
    this.vpos = vpos;
    if (key !== null) {
      this.klen = key.length;
      this.prefix = keyPrefix(key);
    } else {
      this.klen = klen;
      this.prefix = keyPrefixAt(src!.buf, kpos, klen);
    }
    this.vlen = value === null ? vlen : value.length;
    this.size = ELEMENT_SIZE + this.klen + this.vlen;
  }

  get key(): Buffer {
    let k = this.k;
    if (k === null) {
      k = this.src!.key(this.index);
      this.k = k;
    }
    return k;
  }

  set key(key: Buffer) {
    this.k = key;
    this.klen = key.length;
    this.prefix = keyPrefix(key);
    this.size = ELEMENT_SIZE + key.length + this.vlen;
  }

  get keyLength(): number {
    return this.klen;
  }

  /** compare(this.key, key), without making a view of a key still in its page. */
  compareKey(key: Uint8Array): number {
    const k = this.k;
    return k !== null ? compare(k, key) : compareAt(this.src!.buf, this.kpos, this.klen, key);
  }

  /** Copy the key's bytes into buf at `at`. */
  copyKey(buf: Uint8Array, at: number): void {
    const k = this.k;
    if (k !== null) put(buf, k, at);
    else copyBytes(buf, at, this.src!.buf, this.kpos, this.klen);
  }

  get value(): Buffer {
    let v = this.v;
    if (v === null) {
      v = this.src!.value(this.index);
      this.v = v;
    }
    return v;
  }

  set value(value: Buffer) {
    this.v = value;
    this.vlen = value.length;
    this.size = ELEMENT_SIZE + this.klen + value.length;
  }

  get valueLength(): number {
    return this.vlen;
  }

  /** Copy the value's bytes into buf at `at` without making a view of them. */
  copyValue(buf: Uint8Array, at: number): void {
    const v = this.v;
    if (v !== null) put(buf, v, at);
    else copyBytes(buf, at, this.src!.buf, this.vpos, this.vlen);
  }
}

/** buf[at, at + n) = src[from, from + n); short runs by hand (a view for set() costs more). */
export function copyBytes(buf: Uint8Array, at: number, src: Uint8Array, from: number, n: number): void {
  if (n > 32) buf.set(src.subarray(from, from + n), at);
  else for (let i = 0; i < n; i++) buf[at + i] = src[from + i]!;
}

/** keyPrefix of the key at buf[pos, pos + n). */
function keyPrefixAt(buf: Uint8Array, pos: number, n: number): number {
  return (
    (n > 0 ? buf[pos]! * 0x1000000 : 0) +
    (n > 1 ? buf[pos + 1]! << 16 : 0) +
    (n > 2 ? buf[pos + 2]! << 8 : 0) +
    (n > 3 ? buf[pos + 3]! : 0)
  );
}

/** Copy small arrays by hand: TypedArray.set costs more than a short loop for 8-byte keys. */
function put(buf: Uint8Array, src: Uint8Array, at: number): void {
  const n = src.length;
  if (n > 32) buf.set(src, at);
  else for (let i = 0; i < n; i++) buf[at + i] = src[i]!;
}

/** Orders like the key's first four bytes; equal prefixes need a full comparison. */
export function keyPrefix(k: Uint8Array): number {
  const n = k.length;
  return (n > 0 ? k[0]! * 0x1000000 : 0) + (n > 1 ? k[1]! << 16 : 0) + (n > 2 ? k[2]! << 8 : 0) + (n > 3 ? k[3]! : 0);
}

export function makeInode(flags: number, key: Buffer, value: Buffer, pgid: number, child: Node | null): Inode {
  return new Inode(flags, key, value, pgid, child);
}

export function setInodeKey(inode: Inode, key: Buffer): void {
  inode.key = key;
}

/** Branch inodes carry an empty value, so one formula serves both kinds. */
export function elementSize(_leaf: boolean, inode: Inode): number {
  return inode.size;
}
