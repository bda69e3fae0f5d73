/**
 * The cluster's member list, kept in the member's bolt file (etcd's members / members_removed
 * buckets) and in memory. Changes are computed here from applied conf changes and returned as
 * writes that ride the same transaction as the apply, so the list always matches the applied index.
 */
import { Packr } from 'msgpackr';
import type { BackendReader } from '../mvcc/backend.ts';
import type { ConfChange } from '../raft/index.ts';
import type { RaftWrite } from './bolt-raft-storage.ts';
import { decodeIndexKey, indexKey } from './raft-buckets.ts';
import type { MemberInfo } from './proposal.ts';

export const MEMBERS_BUCKET = 'members';
export const MEMBERS_REMOVED_BUCKET = 'members_removed';
const packr = new Packr({ useRecords: false, moreTypes: false });
const MARK = new Uint8Array([1]);

export class MembersStore {
  private members = new Map<number, MemberInfo>();
  private removed = new Set<number>();

  static load(r: BackendReader): MembersStore {
    const s = new MembersStore();
    r.scan(MEMBERS_BUCKET, new Uint8Array(0), undefined, (k, v) => {
      const m = packr.unpack(v) as MemberInfo;
      s.members.set(decodeIndexKey(k), { ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] });
    });
    r.scan(MEMBERS_REMOVED_BUCKET, new Uint8Array(0), undefined, (k) => {
      s.removed.add(decodeIndexKey(k));
    });
    return s;
  }

  reload(other: MembersStore): void {
    this.members = other.members;
    this.removed = other.removed;
  }

  list(): MemberInfo[] {
    return [...this.members.values()]
      .sort((a, b) => a.id - b.id)
      .map((m) => ({ ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] }));
  }

  wasRemoved(id: number): boolean {
    return this.removed.has(id);
  }

  /** A fresh member id, never used before in this cluster. */
  newId(random: () => number): number {
    for (;;) {
      const id = Math.floor(random() * 2 ** 52) + 1;
      if (!this.members.has(id) && !this.removed.has(id)) return id;
    }
  }

  put(m: MemberInfo): RaftWrite[] {
    const copy = { ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] };
    this.members.set(m.id, copy);
    const v = packr.pack(copy);
    return [(w) => w.put(MEMBERS_BUCKET, indexKey(m.id), v)];
  }

  /** Changes some fields of a member; nothing for a member no longer listed (removed meanwhile). */
  update(id: number, fields: Partial<Pick<MemberInfo, 'name' | 'peerURLs' | 'clientURLs'>>): RaftWrite[] {
    const cur = this.members.get(id);
    return cur === undefined ? [] : this.put({ ...cur, ...fields });
  }

  applyConfChange(cc: ConfChange, info: MemberInfo | undefined): RaftWrite[] {
    const cur = this.members.get(cc.nodeId);
    if (cc.type === 'removeNode') {
      this.members.delete(cc.nodeId);
      this.removed.add(cc.nodeId);
      return [
        (w) => {
          w.delete(MEMBERS_BUCKET, indexKey(cc.nodeId));
          w.put(MEMBERS_REMOVED_BUCKET, indexKey(cc.nodeId), MARK);
        },
      ];
    }
    if (this.removed.has(cc.nodeId)) return []; // raft ignores re-adding a removed id too
    const isLearner = cc.type === 'addLearnerNode' ? (cur?.isLearner ?? true) : false;
    const base = info ?? cur ?? { id: cc.nodeId, name: '', peerURLs: [], clientURLs: [], isLearner };
    return this.put({ ...base, id: cc.nodeId, isLearner });
  }
}
