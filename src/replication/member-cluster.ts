/** etcd's Cluster service on a member (member add/remove/promote/update/list) and MoveLeader. */
import type { ClusterApi } from './cluster-api.ts';
import { checkLearnerPromotion } from '../raft/index.ts';
import { ReplicationError, replicationError } from './errors.ts';
import { memberIdFor } from './member-id.ts';
import { encodePayload, type MemberInfo } from './proposal.ts';
import { MemberKv } from './member-kv.ts';

export abstract class MemberCluster extends MemberKv implements ClusterApi {
  /** etcd's publish: puts this member's name and client URLs in the member list through the log. */
  protected publishAttributes(): void {
    const { name, clientURLs } = this.opts;
    if (name === undefined && clientURLs === undefined) return;
    if (this.leader === 0 || this.ticks - this.publishTick < this.requestTimeout) return;
    const me = this.members.list().find((m) => m.id === this.id);
    if (me === undefined) return;
    const want = { id: this.id, name: name ?? me.name, clientURLs: [...(clientURLs ?? me.clientURLs)] };
    if (me.name === want.name && me.clientURLs.join('\n') === want.clientURLs.join('\n')) return;
    this.publishTick = this.ticks;
    try {
      this.node.propose(encodePayload({ id: this.proposals.nextId(), memberAttrs: want }));
    } catch {
      // the leader went away: retried on a later tick
    }
  }
  memberList(): MemberInfo[] {
    return this.members.list();
  }

  /** etcd's MemberAdd: a new voter or learner; start it afterwards with the returned id. */
  async memberAdd(m: {
    peerURLs: string[];
    isLearner?: boolean;
    name?: string;
    id?: number;
  }): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    this.checkUsable();
    const list = this.members.list();
    const urls = new Set(list.flatMap((x) => x.peerURLs));
    if (m.peerURLs.some((u) => urls.has(u)))
      throw new ReplicationError('ERR_MEMBER_EXISTS', 'etcdserver: Peer URLs already exists');
    const id = m.id ?? memberIdFor(m.peerURLs, '', Math.floor((this.opts.now ?? Date.now)() / 1000));
    if (list.some((x) => x.id === id) || this.members.wasRemoved(id)) throw replicationError('ERR_MEMBER_EXISTS');
    const info: MemberInfo = {
      id,
      name: m.name ?? '',
      peerURLs: [...m.peerURLs],
      clientURLs: [],
      isLearner: m.isLearner === true,
    };
    const members = await this.proposeConf({ type: info.isLearner ? 'addLearnerNode' : 'addNode', nodeId: id }, info);
    return { member: info, members };
  }

  async memberRemove(id: number): Promise<MemberInfo[]> {
    this.checkUsable();
    if (!this.members.list().some((x) => x.id === id)) throw replicationError('ERR_MEMBER_NOT_FOUND');
    return this.proposeConf({ type: 'removeNode', nodeId: id });
  }

  /**
   * etcd's MemberPromote: only on the leader (others answer ERR_NOT_LEADER), only a learner, and
   * only one whose log is within 90% of the leader's.
   */
  async memberPromote(id: number): Promise<MemberInfo[]> {
    this.checkUsable();
    const m = this.members.list().find((x) => x.id === id);
    if (m === undefined) throw replicationError('ERR_MEMBER_NOT_FOUND');
    if (!m.isLearner) throw replicationError('ERR_MEMBER_NOT_LEARNER');
    const verdict = checkLearnerPromotion(this.node.status(), id);
    if (!verdict.ok) {
      if (verdict.reason === 'notLeader') throw replicationError('ERR_NOT_LEADER');
      if (verdict.reason === 'lagging')
        throw replicationError('ERR_LEARNER_NOT_READY', `match ${verdict.learnerMatch} of ${verdict.leaderMatch}`);
      if (verdict.reason === 'notLearner') throw replicationError('ERR_MEMBER_NOT_LEARNER');
      throw replicationError('ERR_MEMBER_NOT_FOUND');
    }
    return this.proposeConf({ type: 'addNode', nodeId: id }, { ...m, isLearner: false });
  }

  /** etcd's MemberUpdate: new peer URLs for a member, replicated as a log entry. */
  async memberUpdate(id: number, peerURLs: string[]): Promise<MemberInfo[]> {
    this.checkUsable();
    this.checkNotLearner();
    const m = this.members.list().find((x) => x.id === id);
    if (m === undefined) throw replicationError('ERR_MEMBER_NOT_FOUND');
    const other = this.members
      .list()
      .filter((x) => x.id !== id)
      .flatMap((x) => x.peerURLs);
    if (peerURLs.some((u) => other.includes(u)))
      throw new ReplicationError('ERR_MEMBER_EXISTS', 'etcdserver: Peer URLs already exists');
    const pid = this.proposals.nextId();
    const data = encodePayload({ id: pid, memberUpdate: { ...m, peerURLs: [...peerURLs] } });
    return this.awaitApplied<MemberInfo[]>(pid, () => this.node.propose(data));
  }

  /** Hands leadership to `id` (etcd's MoveLeader); resolves once it leads or rejects on timeout. */
  async transferLeadership(id: number): Promise<void> {
    this.checkUsable();
    if (this.role !== 'leader') throw replicationError('ERR_NOT_LEADER');
    if (!this.confState.voters.includes(id))
      throw replicationError('ERR_MEMBER_NOT_FOUND', 'transferee must be a voter');
    this.node.transferLeader(id);
    this.kick();
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({ to: id, resolve, reject, deadline: this.ticks + this.requestTimeout });
    });
  }
}
