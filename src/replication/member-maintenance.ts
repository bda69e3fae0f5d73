/** etcd's Maintenance service on a member: status, alarms, hash, snapshot, defragment. */
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import type { DB } from '../bolt/index.ts';
import { etcdSnapshot } from '../bolt/backup.ts';
import type { Readable } from 'node:stream';
import type {
  AlarmMember,
  AlarmResponse,
  DefragmentResponse,
  HashKVResponse,
  Maintenance,
  SnapshotOptions,
} from '../api/maintenance.ts';
import { SERVER_VERSION } from '../api/kv-store.ts';
import type { StatusResponse } from '../mvcc/requests.ts';
import { type Status } from '../raft/index.ts';
import { ReplicationError } from './errors.ts';
import { MemberCluster } from './member-cluster.ts';
import { encodePayload } from './proposal.ts';
import { alarmText, checkAlarmMember } from './alarms.ts';
import type { MemberStatus } from './member-options.ts';

export abstract class MemberMaintenance extends MemberCluster implements Maintenance {
  /**
   * This member's raft position (etcd's Status fields), synchronously. As etcd 3.4: raftIndex is the
   * committed index (not the last index in the log), raftAppliedIndex the applied one.
   */
  memberStatus(): MemberStatus {
    const st = this.node.status();
    const db = this.backend.inner instanceof BoltBackend ? this.backend.inner.db : undefined;
    return {
      memberId: this.id,
      leader: st.softState.lead,
      raftTerm: st.hardState.term,
      raftIndex: st.hardState.commit,
      raftAppliedIndex: this.applied,
      isLearner: this.isLearner,
      dbSize: db !== undefined && !db.closed ? db.stats().pgid * db.pageSize : 0,
    };
  }
  /** etcd's Maintenance.Status for this member. */
  async status(): Promise<StatusResponse> {
    this.checkUsable();
    const store = await this.currentStore();
    const s = store.status();
    const m = this.memberStatus();
    const noLeader = m.leader === 0 ? ['etcdserver: no leader'] : [];
    return {
      header: this.header(s.header),
      version: SERVER_VERSION,
      dbSize: s.dbSize,
      dbSizeInUse: s.dbSizeInUse,
      leader: BigInt(m.leader),
      raftIndex: m.raftIndex,
      raftTerm: m.raftTerm,
      raftAppliedIndex: m.raftAppliedIndex,
      isLearner: m.isLearner,
      errors: [...noLeader, ...this.alarms.list().map(alarmText)],
    };
  }

  /**
   * The cluster's raised alarms (etcd's Alarm GET, which etcd 3.4 orders through raft): every
   * member lists the same ones once it applied them, each naming the member that raised it.
   */
  async alarmList(): Promise<AlarmResponse> {
    await this.readBarrier();
    return { header: this.header((await this.currentStore()).status().header), alarms: this.alarms.list() };
  }

  /**
   * etcd's Alarm DEACTIVATE, proposed through the log so every member clears it: exactly the
   * (member, type) alarm given, or every raised alarm (what etcdctl alarm disarm does). Answers the
   * alarms cleared.
   */
  async alarmDisarm(alarm?: AlarmMember): Promise<AlarmResponse> {
    this.checkUsable();
    this.checkNotLearner();
    const which = alarm !== undefined ? [checkAlarmMember(alarm)] : this.alarms.list();
    const cleared: AlarmMember[] = [];
    for (const a of which) cleared.push(...(await this.proposeAlarm('deactivate', a)));
    return { header: this.header((await this.currentStore()).status().header), alarms: cleared };
  }

  /**
   * etcd's Alarm ACTIVATE, proposed through the log so every member raises it and keeps it in its
   * file: NOSPACE caps writes that add data, CORRUPT refuses every write, on every member. Answers
   * the alarm, also when it was already raised.
   */
  async alarmActivate(alarm: AlarmMember): Promise<AlarmResponse> {
    this.checkUsable();
    this.checkNotLearner();
    const raised = await this.proposeAlarm('activate', checkAlarmMember(alarm));
    return { header: this.header((await this.currentStore()).status().header), alarms: raised };
  }

  private proposeAlarm(action: 'activate' | 'deactivate', a: AlarmMember): Promise<AlarmMember[]> {
    const id = this.proposals.nextId();
    const data = encodePayload({ id, alarm: { action, memberId: a.memberId, alarm: a.alarm } });
    return this.awaitApplied<AlarmMember[]>(id, () => this.node.propose(data));
  }

  // ---- Maintenance: thin, the store and the bolt file do the work

  /** etcd's HashKV over this member's applied history. */
  async hashKV(revision = 0): Promise<HashKVResponse> {
    const store = await this.currentStore();
    const h = await store.hashKV(revision);
    return { header: this.header({ revision: h.revision }), hash: h.hash, compactRevision: h.compactRevision };
  }

  /** This member's whole file (etcd's buckets and the raft log) as etcd's Snapshot stream. */
  snapshot(options: SnapshotOptions = {}): Readable & { readonly size: number } {
    this.checkUsable();
    return etcdSnapshot(this.boltFile().begin(false), options);
  }

  /** Online defragmentation of this member's file (raft and the store keep going; writes wait for the swap). */
  async defragment(): Promise<DefragmentResponse> {
    const store = await this.currentStore();
    await this.boltFile().defragment();
    return { header: this.header(store.status().header) };
  }

  private boltFile(): DB {
    if (!(this.backend.inner instanceof BoltBackend))
      throw new ReplicationError('ERR_INVALID_ARGUMENT', 'this member has no bolt file');
    return this.backend.inner.db;
  }

  raftStatus(): Status {
    return this.node.status();
  }

  /** The store's consistent index: the last log index whose effects are durable here. */
  consistentIndex(): number {
    return this.store.consistentIndex();
  }
}
