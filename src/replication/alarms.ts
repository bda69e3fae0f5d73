/**
 * The cluster's raised alarms on a member: every member applies the same AlarmRequest entries from
 * the log, so every member lists the same alarms, each naming the member that raised it. The store
 * itself is etcd's (src/api/alarm-store.ts); its writes ride the apply's commit, as the member list
 * does, so the alarms always match the applied index and travel with a snapshot. Here: what each
 * raised alarm refuses at apply, alike on every member.
 */
import { costTxn } from '../api/quota.ts';
import type { ApplyRequest } from '../mvcc/requests.ts';

export {
  ALARM_BUCKET,
  type AlarmChange,
  AlarmStore,
  alarmText,
  checkAlarmMember,
  corruptCluster,
  decodeAlarmKey,
  encodeAlarmKey,
} from '../api/alarm-store.ts';

/**
 * etcd's capped applier: with NOSPACE raised, a request that adds data (a put, a txn with a put in
 * either branch, a lease grant) fails at apply on every member; deletes, compaction and revokes go on.
 */
export function addsData(req: ApplyRequest): boolean {
  if ('put' in req || 'leaseGrant' in req) return true;
  return 'txn' in req && costTxn(req.txn) > 0;
}

/**
 * etcd's corrupt applier: with CORRUPT raised, every request that goes through the log fails at
 * apply on every member (puts, deletes, txns, compaction, lease grants and revokes); reads do not
 * go through it.
 */
export function refusedWhenCorrupt(req: ApplyRequest): boolean {
  return (
    'put' in req ||
    'deleteRange' in req ||
    'txn' in req ||
    'compaction' in req ||
    'leaseGrant' in req ||
    'leaseRevoke' in req
  );
}
