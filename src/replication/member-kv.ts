/** etcd's v3 KV and Lease calls on a member (v3_server.go): reads wait for the read barrier, writes go through raft. */
import type { DeleteOptions, GetOptions, SetOptions } from '../api/kv.ts';
import { prefixEnd } from '../api/prefix.ts';
import { costPut, costTxn, LEASE_COST, noSpace } from '../api/quota.ts';
import { MvccError } from '../mvcc/errors.ts';
import { leaseId } from '../mvcc/validate.ts';
import type { WatchRequest, WatchStream, Watcher } from '../watch/types.ts';
import type {
  BytesLike,
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
} from '../mvcc/requests.ts';
import { ReplicationError } from './errors.ts';
import { txnKind } from './txn-kind.ts';
import { corruptCluster } from './alarms.ts';
import { encodePayload } from './proposal.ts';
import { MemberCore } from './member-core.ts';
import { mark, tracing } from './trace.ts';

export abstract class MemberKv extends MemberCore {
  /** Tick of this member's last NOSPACE proposal (re-proposed after a request timeout if lost). */
  private raisedTick = Number.NEGATIVE_INFINITY;

  /**
   * etcd's quota check before proposing a write that adds data: refused when it would take this
   * member's file past its quota, which raises this member's NOSPACE alarm through the log (as
   * etcd's quota check does, before any applier), and refused while CORRUPT or any member's NOSPACE
   * is raised (the apply would refuse it anyway).
   */
  protected checkSpace(cost: number): void {
    if (cost <= 0) return;
    // etcd checks the size before proposing, then its appliers refuse by the raised alarms.
    if (!this.quota.exceeds(cost)) {
      if (this.alarms.has('CORRUPT')) throw corruptCluster();
      if (this.alarms.has('NOSPACE')) throw noSpace();
      return;
    }
    if (!this.alarms.has('NOSPACE') && !this.isLearner && this.ticks - this.raisedTick >= this.requestTimeout) {
      this.raisedTick = this.ticks;
      const id = this.proposals.nextId();
      const data = encodePayload({ id, alarm: { action: 'activate', memberId: BigInt(this.id), alarm: 'NOSPACE' } });
      this.awaitApplied<unknown>(id, () => this.node.propose(data)).catch(() => undefined);
    }
    throw noSpace();
  }

  protected revokeExpiredLeases(): void {
    for (const id of this.lessor.expired(this.ticks, this.requestTimeout)) {
      try {
        this.propose({ leaseRevoke: { ID: id } }).catch(() => undefined);
      } catch {
        // no leader any more: the next leader decides
      }
    }
  }
  async range(req: RangeRequest): Promise<RangeResponse> {
    this.checkUsable();
    if (req.serializable !== true) await this.readBarrier();
    const store = await this.currentStore();
    const r = store.range(req);
    return { ...r, header: this.header(r.header) };
  }

  async put(req: PutRequest): Promise<PutResponse> {
    if (tracing) mark('put');
    this.checkSpace(costPut(req));
    const r = await this.propose({ put: req });
    if (tracing) mark('put-done');
    if (!('put' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.put, header: this.header(r.put.header) };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const r = await this.propose({ deleteRange: req });
    if (!('deleteRange' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.deleteRange, header: this.header(r.deleteRange.header) };
  }

  /** A txn that only ranges is a read (etcd's isTxnReadonly): served like a range, not logged. */
  async txn(req: TxnRequest): Promise<TxnResponse> {
    const kind = txnKind(req);
    if (kind !== 'write') {
      this.checkUsable();
      this.checkNotLearner(); // etcd 3.4's learner serves ranges only
      if (kind === 'linearizable') await this.readBarrier();
      const r = (await this.currentStore()).readTxn(req);
      return { ...r, header: this.header(r.header) };
    }
    this.checkSpace(costTxn(req));
    const r = await this.propose({ txn: req });
    if (!('txn' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.txn, header: this.header(r.txn.header) };
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const physical = req.physical === true;
    const r = await this.propose({ compaction: { revision: req.revision } });
    if (!('compaction' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    if (physical) await (await this.currentStore()).compactionDone();
    return { header: this.header(r.compaction.header) };
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    this.checkSpace(LEASE_COST);
    // etcd picks the id before proposing, so every member grants the same lease
    const given = leaseId(req.ID, 'ID');
    const ID = given !== 0n ? given : this.lessor.newId(this.opts.random ?? Math.random);
    const r = await this.propose({ leaseGrant: { ...req, ID } });
    if (!('leaseGrant' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { ...r.leaseGrant, header: this.header(r.leaseGrant.header) };
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    const r = await this.propose({ leaseRevoke: req });
    if (!('leaseRevoke' in r)) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'unexpected response');
    return { header: this.header(r.leaseRevoke.header) };
  }

  /**
   * Renews a lease. Expiry is the leader's to decide: the leader renews at once; a follower
   * proposes the keep-alive (etcd forwards it to the leader), which the member leading when it is
   * applied renews, and answers with the lease's granted TTL once it applied it itself.
   */
  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    this.checkUsable();
    this.checkNotLearner();
    if (this.role !== 'leader') {
      const id = this.proposals.nextId();
      const data = encodePayload({ id, keepAlive: { ID: leaseId(req.ID, 'ID') } });
      return this.awaitApplied<LeaseKeepAliveResponse>(id, () => this.node.propose(data));
    }
    const store = await this.currentStore();
    const r = await store.leaseKeepAlive(req);
    this.lessor.renew(leaseId(req.ID, 'ID'));
    return { ...r, header: this.header(r.header) };
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    await this.readBarrier();
    const store = await this.currentStore();
    const r = await store.leaseTimeToLive(req);
    const left = this.role === 'leader' ? this.lessor.remainingSeconds(leaseId(req.ID, 'ID')) : undefined;
    return { ...r, ...(left !== undefined && r.TTL >= 0 ? { TTL: left } : {}), header: this.header(r.header) };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    await this.readBarrier();
    const store = await this.currentStore();
    const r = await store.leaseLeases();
    return { ...r, header: this.header(r.header) };
  }
  /** Watches this member's applied revisions (etcd serves watches from the member's own store); not on a learner. */
  watch(req: WatchRequest): Watcher {
    this.checkUsable();
    this.checkNotLearner(); // etcd 3.4 serves learners only serializable ranges and status
    return this.hub.watch(req);
  }

  watchStream(): WatchStream {
    this.checkUsable();
    this.checkNotLearner();
    return this.hub.stream();
  }

  async get(key: BytesLike, opts: GetOptions = {}): Promise<RangeResponse> {
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = opts;
    return this.range({ ...rest, key, rangeEnd: rangeEndFor(key, opts) });
  }

  async set(key: BytesLike, value: BytesLike, opts: SetOptions = {}): Promise<PutResponse> {
    return this.put({ ...opts, key, value });
  }

  async delete(key: BytesLike, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const { prefix: _p, fromKey: _f, rangeEnd: _r, ...rest } = opts;
    return this.deleteRange({ ...rest, key, rangeEnd: rangeEndFor(key, opts) });
  }
}

function rangeEndFor(
  key: BytesLike,
  o: { prefix?: boolean; fromKey?: boolean; rangeEnd?: BytesLike },
): BytesLike | undefined {
  const set = (['prefix', 'fromKey', 'rangeEnd'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
  if (set.length > 1)
    throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${set.join(' and ')} exclude each other`);
  if (o.prefix === true) return prefixEnd(key);
  if (o.fromKey === true) return new Uint8Array([0]);
  return o.rangeEnd;
}
