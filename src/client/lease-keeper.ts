/**
 * A lease kept alive in the background, the way etcd's clientv3 KeepAlive does: a keepalive every
 * third of the TTL, retried quickly when it fails. The lease is reported lost (the `lost` promise
 * resolves, `signal` aborts) when the server says it is gone (TTL 0: expired or revoked) or when no
 * keepalive got through for a whole TTL, so it has expired on the server by then. Works over any
 * keepalive call, so in-process stores can use it too.
 */
import type { BoltkvError } from '../errors.ts';
import { ClientError } from './errors.ts';

export interface LeaseCalls {
  keepAlive(id: bigint): Promise<{ TTL: number }>;
  revoke(id: bigint): Promise<unknown>;
}

export class KeptLease implements AsyncDisposable {
  /** The lease ID, exact (etcd's IDs exceed 2^53). */
  readonly ID: bigint;
  /** The TTL the server granted, in seconds. */
  readonly TTL: number;
  /** Resolves with the reason once the lease is lost or the helper is closed; never rejects. */
  readonly lost: Promise<BoltkvError>;
  readonly #calls: LeaseCalls;
  readonly #ac = new AbortController();
  #resolveLost!: (e: BoltkvError) => void;
  #timer: NodeJS.Timeout | undefined;
  /** Until when the server holds the lease for sure, by our clock (ms). */
  #expiresAt: number;
  #onDone: (l: KeptLease) => void;

  constructor(id: bigint, ttl: number, calls: LeaseCalls, onDone: (l: KeptLease) => void) {
    this.ID = id;
    this.TTL = ttl;
    this.#calls = calls;
    this.#onDone = onDone;
    this.#expiresAt = Date.now() + ttl * 1000;
    this.lost = new Promise((r) => {
      this.#resolveLost = r;
    });
    this.#schedule(this.#period());
  }

  /** Aborts when the lease is lost or the helper is closed: pass it to work that needs the lease. */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** True while the helper keeps the lease alive. */
  get alive(): boolean {
    return !this.#ac.signal.aborted;
  }

  #period(): number {
    return Math.max(100, Math.floor((this.TTL * 1000) / 3));
  }

  #schedule(ms: number): void {
    if (!this.alive) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    if (!this.alive) return;
    const sentAt = Date.now();
    try {
      const r = await this.#calls.keepAlive(this.ID);
      if (!this.alive) return;
      if (!(r.TTL > 0)) {
        this.#end(new ClientError('ERR_LEASE_LOST', `boltkv: lease ${this.ID} expired or was revoked`));
        return;
      }
      this.#expiresAt = sentAt + r.TTL * 1000;
      this.#schedule(Math.max(100, Math.floor((r.TTL * 1000) / 3)));
    } catch (e) {
      if (!this.alive) return;
      const code = (e as { code?: unknown } | null)?.code;
      if (code === 'ERR_LEASE_NOT_FOUND') {
        this.#end(new ClientError('ERR_LEASE_LOST', `boltkv: lease ${this.ID} expired or was revoked`, { cause: e }));
        return;
      }
      if (code === 'ERR_CLOSED') {
        this.#end(new ClientError('ERR_CLOSED', 'boltkv: the client was closed', { cause: e }));
        return;
      }
      if (Date.now() >= this.#expiresAt) {
        this.#end(
          new ClientError('ERR_LEASE_LOST', `boltkv: no keepalive of lease ${this.ID} got through for its whole TTL`, {
            cause: e,
          }),
        );
        return;
      }
      this.#schedule(Math.min(500, Math.max(50, this.#expiresAt - Date.now())));
    }
  }

  #end(reason: BoltkvError): void {
    if (!this.alive) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#ac.abort(reason);
    this.#resolveLost(reason);
    this.#onDone(this);
  }

  /** Stop keeping the lease alive; it then expires after its TTL. Idempotent. */
  close(): void {
    this.#end(new ClientError('ERR_CLOSED', `boltkv: lease ${this.ID} is no longer kept alive`));
  }

  /** Revoke the lease now (its keys are deleted) and stop. */
  async revoke(): Promise<void> {
    this.close();
    await this.#calls.revoke(this.ID);
  }

  /** `await using lease = await kv.lease(10)`: revokes on scope exit (a lost lease is not an error). */
  async [Symbol.asyncDispose](): Promise<void> {
    const wasAlive = this.alive;
    this.close();
    if (!wasAlive) return;
    try {
      await this.#calls.revoke(this.ID);
    } catch (e) {
      if ((e as { code?: unknown } | null)?.code !== 'ERR_LEASE_NOT_FOUND') throw e;
    }
  }
}
