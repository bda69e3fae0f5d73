/**
 * Lease expiry as the leader decides it (etcd's lessor): the revision layer only stores leases and
 * applies revokes; this tracks deadlines on the leader, which proposes a revoke for each lease that
 * ran out. A member that becomes leader gives every lease its full TTL again, since the old leader's
 * keep-alives are unknown to it. Followers hold no deadlines.
 */
import type { Backend } from '../mvcc/backend.ts';
import { decodeLease } from '../mvcc/codec.ts';
import type { ApplyRequest, ApplyResponse } from '../mvcc/requests.ts';
import { LEASE_BUCKET } from '../mvcc/store.ts';
import { leaseId } from '../mvcc/validate.ts';

interface LeaseState {
  ttlSeconds: number;
  /** ms on the clock; undefined while not leader. */
  expiry: number | undefined;
  /** Tick at which a revoke was last proposed (retried after a request timeout). */
  revokeTick: number | undefined;
}

export class Lessor {
  private leases = new Map<bigint, LeaseState>();
  private leading = false;

  constructor(private readonly now: () => number) {}

  /** Reloads the leases from the file (open, snapshot install). */
  restore(backend: Backend): void {
    this.leases.clear();
    backend.view((r) =>
      r.scan(LEASE_BUCKET, new Uint8Array(0), undefined, (k, v) => {
        const l = decodeLease(v, k);
        this.leases.set(l.ID, { ttlSeconds: l.TTL, expiry: undefined, revokeTick: undefined });
      }),
    );
    if (this.leading) this.promote();
  }

  promote(): void {
    this.leading = true;
    const now = this.now();
    for (const l of this.leases.values()) {
      l.expiry = now + l.ttlSeconds * 1000;
      l.revokeTick = undefined;
    }
  }

  demote(): void {
    this.leading = false;
    for (const l of this.leases.values()) l.expiry = undefined;
  }

  applied(req: ApplyRequest, resp: ApplyResponse): void {
    if ('leaseGrant' in resp) {
      const ttl = resp.leaseGrant.TTL;
      this.leases.set(resp.leaseGrant.ID, {
        ttlSeconds: ttl,
        expiry: this.leading ? this.now() + ttl * 1000 : undefined,
        revokeTick: undefined,
      });
    } else if ('leaseRevoke' in req) {
      this.leases.delete(leaseId(req.leaseRevoke.ID, 'ID'));
    }
  }

  renew(id: bigint): void {
    const l = this.leases.get(id);
    if (l !== undefined && this.leading) l.expiry = this.now() + l.ttlSeconds * 1000;
  }

  /** The TTL a lease was granted with (what a keep-alive answers), undefined if unknown. */
  ttl(id: bigint): number | undefined {
    return this.leases.get(id)?.ttlSeconds;
  }

  remainingSeconds(id: bigint): number | undefined {
    const l = this.leases.get(id);
    if (l === undefined || l.expiry === undefined) return undefined;
    return Math.max(0, Math.trunc((l.expiry - this.now()) / 1000));
  }

  /** Leases past their deadline with no revoke in flight (a revoke is re-proposed after retryTicks). */
  expired(tick: number, retryTicks: number): bigint[] {
    if (!this.leading) return [];
    const now = this.now();
    const out: bigint[] = [];
    for (const [id, l] of this.leases) {
      if (l.expiry === undefined || l.expiry > now) continue;
      if (l.revokeTick !== undefined && tick - l.revokeTick < retryTicks) continue;
      l.revokeTick = tick;
      out.push(id);
    }
    return out;
  }

  /** A fresh lease id (positive, below 2^53), as etcd picks one before proposing the grant. */
  newId(random: () => number): bigint {
    for (;;) {
      const id = BigInt(Math.floor(random() * 2 ** 52) + 1);
      if (!this.leases.has(id)) return id;
    }
  }
}
