/** boltkv/replication: raft members with the log in their one bolt file. See docs/replication.md. */
export { Member } from './member.ts';
export { MAX_REQUEST_BYTES } from './member-options.ts';
export type { MemberOptions, MemberStatus } from './member-options.ts';
export { ReplicatedNode } from './node.ts';
export type { NodeOptions, ClusterMemberSpec } from './node.ts';
export { PeerTransport } from './transport.ts';
export type { TransportOptions, PeerHandler } from './transport.ts';
export { BoltRaftStorage } from './bolt-raft-storage.ts';
export type { BoltRaftStorageOptions, LogSource } from './bolt-raft-storage.ts';
export { ReplicationError, ETCD_MESSAGES as REPLICATION_ETCD_MESSAGES } from './errors.ts';
export type { ReplicationErrorCode } from './errors.ts';
export type { MemberInfo } from './proposal.ts';
export type { ClusterApi } from './cluster-api.ts';
export { memberIdFor, parseInitialCluster } from './member-id.ts';
