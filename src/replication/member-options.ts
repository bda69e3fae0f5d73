/** What a replicated member is given when it opens, and what it reports about itself. */
import type { FileSystem, OpenOptions } from '../bolt/index.ts';
import type { Message } from '../raft/index.ts';
import type { WatchHubOptions } from '../watch/types.ts';
import type { MemberInfo } from './proposal.ts';
import type { Rename } from './snapshot-install.ts';

/** etcd's default --max-request-bytes (1.5 MiB). */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

export interface MemberOptions {
  id: number;
  /** The member's bolt file. */
  path: string;
  /** Where outgoing raft messages go. Snapshot messages carry empty data: see snapshotBytes(). */
  send: (msgs: Message[]) => void;
  /**
   * The cluster to bootstrap when the file holds no raft state yet (a new cluster). Omit to join
   * an existing cluster: the member then waits for the leader's snapshot.
   */
  initialCluster?: MemberInfo[];
  /** The file layer (tests inject faults) and how to rename a file over another atomically. */
  fileSystem?: FileSystem;
  rename?: Rename;
  bolt?: OpenOptions;
  electionTick?: number;
  heartbeatTick?: number;
  /** Ticks a proposal or read may wait before failing with ERR_TIMEOUT. Default 50. */
  requestTimeoutTicks?: number;
  /** Applied entries between raft snapshots (etcd --snapshot-count; default 10,000). */
  snapshotCount?: number;
  /** Entries kept behind a snapshot so slow followers catch up from the log (etcd: 5,000). */
  catchUpEntries?: number;
  /** Clock for lease expiry in ms (default Date.now). */
  now?: () => number;
  /** Randomness for election timeouts and proposal ids (default Math.random). */
  random?: () => number;
  /** Passed to the revision layer. */
  compactionBatchIntervalMs?: number;
  watch?: WatchHubOptions;
  /** etcd --initial-cluster-token: member ids added through the API derive from it and the peer URLs. */
  clusterToken?: string;
  /**
   * This member's name and client URLs (etcd --name, --advertise-client-urls). Once it knows a
   * leader, the member proposes them for its own entry in the member list unless that entry
   * already says so (etcd's publish), so `memberList()` shows every member's client URLs.
   */
  name?: string;
  clientURLs?: string[];
  /**
   * etcd --quota-backend-bytes: 0 (default) is etcd's 2 GiB, negative turns it off. A write that
   * would take this member's file past it is refused with "mvcc: database space exceeded" and
   * raises this member's NOSPACE alarm (api/quota.ts).
   */
  quotaBackendBytes?: number;
}

/** etcd's Status response, in process. */
export interface MemberStatus {
  memberId: number;
  leader: number;
  raftTerm: number;
  /** The committed index (etcd 3.4's StatusResponse.raftIndex is the committed one). */
  raftIndex: number;
  /** The index this member applied (StatusResponse.raftAppliedIndex). */
  raftAppliedIndex: number;
  isLearner: boolean;
  dbSize: number;
}
