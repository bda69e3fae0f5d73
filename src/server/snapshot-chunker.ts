/**
 * Cuts a store snapshot stream (file image, then its 32-byte SHA-256) into etcd 3.4's
 * SnapshotResponse messages: blobs of 32 KiB (the last one shorter) with remaining_bytes counting
 * the image bytes still to come, then the digest alone with remaining_bytes 0. Pure: bytes in,
 * messages out; it refuses a stream whose length disagrees with the announced size.
 */
import type { Readable } from 'node:stream';
import { Panic } from '../errors.ts';

/** What the store's snapshot() returns: the stream and the image's byte count. */
export type SnapshotImage = Readable & { readonly size: number };

export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
const DIGEST_BYTES = 32;

export interface SnapshotMessage {
  remainingBytes: number;
  blob: Uint8Array;
}

export class SnapshotChunker {
  readonly #size: number;
  #sent = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /** Feed stream bytes; returns the whole messages they complete. */
  push(piece: Buffer): SnapshotMessage[] {
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
    const out: SnapshotMessage[] = [];
    for (;;) {
      const left = this.#size - this.#sent;
      const n = Math.min(SNAPSHOT_CHUNK_BYTES, left);
      if (n === 0 || this.#pendingBytes < n) break;
      // Hold back the last image blob until it is full; the digest bytes after it stay pending.
      const blob = this.#take(n);
      this.#sent += n;
      out.push({ remainingBytes: this.#size - this.#sent, blob });
    }
    if (this.#sent === this.#size && this.#pendingBytes > DIGEST_BYTES) throw this.#mismatch();
    return out;
  }

  /** The stream ended: the digest message, or an error if the bytes do not add up. */
  end(): SnapshotMessage[] {
    if (this.#sent !== this.#size || this.#pendingBytes !== DIGEST_BYTES) throw this.#mismatch();
    return [{ remainingBytes: 0, blob: this.#take(DIGEST_BYTES) }];
  }

  #take(n: number): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    const blob = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    return blob;
  }

  #mismatch(): Panic {
    return new Panic('snapshot stream length does not match its announced size');
  }
}
