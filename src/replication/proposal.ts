/**
 * What a replicated log entry carries: the request (etcd's InternalRaftRequest, state-changing
 * part) and the id of the proposal, so the member that proposed it can answer its caller when the
 * entry is applied. Ids are (incarnation, sequence): the incarnation is drawn at random each time
 * a member starts, so an entry proposed before a restart never answers a caller after it.
 */
import { Packr } from 'msgpackr';
import type { ApplyRequest } from '../mvcc/requests.ts';
import type { AlarmChange } from './alarms.ts';
import { ReplicationError } from './errors.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface ProposalId {
  /** Proposing member. */
  m: number;
  /** Random per start of that member. */
  i: number;
  /** Sequence within the incarnation. */
  s: number;
}

export interface NormalPayload {
  id: ProposalId;
  req: ApplyRequest;
}

/** A change of a member's URLs (etcd's ConfChangeUpdateNode, which the raft core does not have). */
export interface MemberUpdatePayload {
  id: ProposalId;
  memberUpdate: MemberInfo;
}

/** A member publishing its name and client URLs once it knows a leader (etcd's publish). */
export interface MemberAttrsPayload {
  id: ProposalId;
  memberAttrs: { id: number; name: string; clientURLs: string[] };
}

/** A keep-alive made on a follower, renewed by whichever member leads when it is applied. */
export interface KeepAlivePayload {
  id: ProposalId;
  keepAlive: { ID: bigint };
}

/** etcd's AlarmRequest (ACTIVATE / DEACTIVATE), applied on every member (alarms.ts). */
export interface AlarmPayload {
  id: ProposalId;
  alarm: AlarmChange;
}

/** What a normal (not conf change) entry carries. */
export type EntryPayload = NormalPayload | MemberUpdatePayload | MemberAttrsPayload | KeepAlivePayload | AlarmPayload;

/** The context of a conf change entry: who asked, and the member's public description. */
export interface ConfPayload {
  id: ProposalId;
  member?: MemberInfo;
}

/** A member as the cluster API lists it (etcd's Member message). */
export interface MemberInfo {
  id: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function encodePayload(p: EntryPayload | ConfPayload): Uint8Array {
  return packr.pack(p);
}

export function decodePayload<T extends EntryPayload | ConfPayload>(b: Uint8Array, what: string): T {
  try {
    const v = packr.unpack(b) as T;
    if (typeof v !== 'object' || v === null || typeof v.id !== 'object') throw new Error('no proposal id');
    return v;
  } catch (err) {
    throw new ReplicationError('ERR_CORRUPT', `${what}: entry payload does not decode`, { cause: err });
  }
}

export function idKey(id: ProposalId): string {
  return `${id.m}:${id.i}:${id.s}`;
}
