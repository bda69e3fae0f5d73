/**
 * The lessor (etcd's lease.Lessor): which leases exist, when each expires, and which keys each one
 * holds. It decides and remembers; it performs no I/O and writes no keys. The store persists the
 * records it hands back and deletes a revoked lease's keys in its own write transaction.
 */
import { randomBytes } from 'node:crypto';
import type { BackendReader } from './backend.ts';
import { decodeLease, encodeLease } from './codec.ts';
import { corruption, etcdError } from './errors.ts';
import { leaseIdToBytes } from './revision.ts';

import { LEASE_BUCKET } from './buckets.ts';

export { LEASE_BUCKET };
/** etcd's MaxLeaseTTL (seconds). */
export const MAX_LEASE_TTL = 9_000_000_000;

/**
 * etcd's default election timeout (ms). A member that becomes leader (also a single member after a
 * restart) promotes its lessor with this extension, so every lease gets its TTL plus this again.
 */
export const PROMOTE_EXTENSION_MS = 1000;

export interface Lease {
  ID: bigint;
  /** Grant order, to order leases expiring in the same millisecond as etcd does. */
  seq: number;
  /** Granted TTL, seconds. */
  TTL: number;
  /** ms on the lessor's clock */
  expiry: number;
  /** Keys attached (byte-strings). */
  keys: Set<string>;
}

/** A record for the `lease` bucket: value null deletes it. */
export interface LeaseWrite {
  key: Uint8Array;
  value: Uint8Array | null;
}

export class Lessor {
  readonly #leases = new Map<bigint, Lease>();
  readonly #keyLease = new Map<string, bigint>();
  /** No lease expires before this (a lower bound; a keepalive may make it stale-low). */
  #nextExpiry = Infinity;
  #seq = 0;
  readonly #now: () => number;
  readonly #minTTL: number;

  constructor(now: () => number, minTTL: number) {
    this.#now = now;
    this.#minTTL = minTTL;
  }

  /**
   * Load every lease from the `lease` bucket, each with its full TTL from now plus etcd's promotion
   * extension (as etcd does when a member becomes leader, so TimeToLive right after a restart reports
   * the full granted TTL), and attach keys by their latest lease (from the key index rebuild).
   */
  restore(r: BackendReader, latestLease: Map<string, bigint>): void {
    const now = this.#now();
    r.scan(LEASE_BUCKET, new Uint8Array(0), undefined, (k, v) => {
      const l = decodeLease(v, k);
      if (Buffer.compare(k, leaseIdToBytes(l.ID)) !== 0)
        throw corruption(LEASE_BUCKET, k, `record holds lease ${l.ID}`);
      if (l.TTL > MAX_LEASE_TTL) throw corruption(LEASE_BUCKET, k, `TTL ${l.TTL} above etcd's maximum`);
      this.#add(l.ID, l.TTL, now + PROMOTE_EXTENSION_MS + l.TTL * 1000);
    });
    for (const [ks, id] of latestLease) {
      const l = this.#leases.get(id);
      if (l === undefined) continue;
      l.keys.add(ks);
      this.#keyLease.set(ks, id);
    }
  }

  has(id: bigint): boolean {
    return this.#leases.has(id);
  }

  get(id: bigint): Lease | undefined {
    return this.#leases.get(id);
  }

  /** Grant (etcd's rules: too large a TTL fails, a short one is raised to the minimum). */
  grant(ttlIn: number, idIn: bigint): { lease: Lease; write: LeaseWrite } {
    if (ttlIn > MAX_LEASE_TTL) throw etcdError('ERR_LEASE_TTL_TOO_LARGE');
    const ttl = Math.max(ttlIn, this.#minTTL);
    let id = idIn;
    if (id === 0n) {
      // positive int63 like etcd's generated IDs, which are mostly far above 2^53
      do id = randomBytes(8).readBigUInt64BE() >> 1n;
      while (id === 0n || this.#leases.has(id));
    } else if (this.#leases.has(id)) throw etcdError('ERR_LEASE_EXISTS');
    const lease = this.#add(id, ttl, this.#now() + ttl * 1000);
    return { lease, write: { key: leaseIdToBytes(id), value: encodeLease({ ID: id, TTL: ttl }) } };
  }

  /** Forget a lease (its keys are the caller's to delete first). */
  remove(id: bigint): LeaseWrite {
    const l = this.#leases.get(id);
    if (l === undefined) throw etcdError('ERR_LEASE_NOT_FOUND');
    for (const ks of l.keys) this.#keyLease.delete(ks);
    this.#leases.delete(id);
    return { key: leaseIdToBytes(id), value: null };
  }

  /** Key `ks` now carries `lease` (0n: none). */
  attach(ks: string, lease: bigint): void {
    const old = this.#keyLease.get(ks);
    if (old !== undefined && old !== lease) this.#leases.get(old)?.keys.delete(ks);
    if (lease !== 0n) {
      this.#leases.get(lease)?.keys.add(ks);
      this.#keyLease.set(ks, lease);
    } else this.#keyLease.delete(ks);
  }

  /** Key `ks` was deleted. */
  detach(ks: string): void {
    this.attach(ks, 0n);
  }

  /** Renew to the granted TTL; undefined if the lease does not exist. */
  renew(id: bigint): Lease | undefined {
    const l = this.#leases.get(id);
    if (l === undefined) return undefined;
    l.expiry = this.#now() + l.TTL * 1000;
    return l;
  }

  /**
   * Whole seconds left, truncated as etcd does: never below 0, and never above the granted TTL (after
   * a restart the promotion extension makes etcd report exactly the TTL, as any elapsed time would).
   */
  remaining(l: Lease): number {
    return Math.min(Math.max(Math.trunc((l.expiry - this.#now()) / 1000), 0), l.TTL);
  }

  /** Lease IDs, soonest expiry first (etcd sorts them by expiry); ties in grant order. */
  list(): bigint[] {
    return [...this.#leases.values()].sort((a, b) => a.expiry - b.expiry || a.seq - b.seq).map((l) => l.ID);
  }

  /** Leases whose time ran out, oldest first; O(1) when none can have expired yet. */
  expired(): Lease[] {
    const now = this.#now();
    if (now < this.#nextExpiry) return [];
    const out: Lease[] = [];
    let next = Infinity;
    for (const l of this.#leases.values()) {
      if (l.expiry <= now) out.push(l);
      else next = Math.min(next, l.expiry);
    }
    this.#nextExpiry = next;
    return out.sort((a, b) => a.expiry - b.expiry || a.seq - b.seq);
  }

  #add(id: bigint, ttl: number, expiry: number): Lease {
    const lease: Lease = { ID: id, seq: this.#seq++, TTL: ttl, expiry, keys: new Set() };
    this.#leases.set(id, lease);
    this.#nextExpiry = Math.min(this.#nextExpiry, expiry);
    return lease;
  }
}
