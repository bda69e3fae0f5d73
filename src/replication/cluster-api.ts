/**
 * The cluster operations a gateway needs from a replicated member (etcd's Cluster service and
 * Maintenance.MoveLeader), in process. `Member` implements it; a gateway maps ReplicationError codes
 * to etcd's gRPC/HTTP statuses (ERR_LEARNER_NOT_SUPPORTED is gRPC 14 / HTTP 503, as in etcd).
 */
import type { MemberStatus } from './member-options.ts';
import type { MemberInfo } from './proposal.ts';

export interface ClusterApi {
  memberList(): MemberInfo[];
  memberAdd(m: {
    peerURLs: string[];
    isLearner?: boolean;
    name?: string;
  }): Promise<{ member: MemberInfo; members: MemberInfo[] }>;
  memberRemove(id: number): Promise<MemberInfo[]>;
  memberPromote(id: number): Promise<MemberInfo[]>;
  memberUpdate(id: number, peerURLs: string[]): Promise<MemberInfo[]>;
  transferLeadership(id: number): Promise<void>;
  /** The raft node's view (leader, term, indexes): etcd's Status fields and every header's raft_term. */
  memberStatus(): MemberStatus;
}
