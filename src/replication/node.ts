/**
 * A running replicated member: the member, its peer transport and the tick timer, wired the way a
 * server process needs them (`boltkv serve` with etcd's cluster flags builds one of these).
 */
import { mkdirSync } from 'node:fs';
import { nodeFileSystem } from '../bolt/index.ts';
import { join } from 'node:path';
import { ReplicationError } from './errors.ts';
import { Member } from './member.ts';
import type { MemberOptions } from './member-options.ts';
import { memberIdFor } from './member-id.ts';
import { memberIdFromPeers, memberIdInFile } from './member-join.ts';
import type { MemberInfo } from './proposal.ts';
import { PeerTransport } from './transport.ts';
import { sweepReceivedSnapshots } from './snapshot-inbox.ts';

export interface ClusterMemberSpec {
  name: string;
  peerURLs: string[];
}

export interface NodeOptions extends Omit<MemberOptions, 'id' | 'path' | 'send' | 'initialCluster'> {
  name: string;
  /** The member's file lives here (boltkv.db). */
  dataDir: string;
  /** Where to accept peer connections (etcd --listen-peer-urls); loopback by default. */
  listenPeerURL?: string;
  /** Several addresses to accept peer connections on (etcd --listen-peer-urls a,b); with listenPeerURL, it comes first. */
  listenPeerURLs?: string[];
  /** What the other members dial (etcd --initial-advertise-peer-urls); defaults to the listen URL. */
  advertisePeerURLs?: string[];
  /** Every member of the cluster when this one first starts (etcd --initial-cluster). */
  initialCluster: ClusterMemberSpec[];
  /** 'new': bootstrap from initialCluster; 'existing': join a running cluster (after member add). */
  initialClusterState?: 'new' | 'existing';
  clusterToken?: string;
  /** Milliseconds per raft tick (etcd --heartbeat-interval; election = electionTick ticks). */
  tickMs?: number;
  /** Called after a snapshot from `from` was received whole and handed to raft (for the server's log). */
  onSnapshotReceived?: (from: number, index: number) => void;
}

export class ReplicatedNode {
  private timer: NodeJS.Timeout | undefined;
  private constructor(
    readonly member: Member,
    readonly transport: PeerTransport,
    readonly peerPort: number,
    readonly peerURL: string,
  ) {}

  static async start(o: NodeOptions): Promise<ReplicatedNode> {
    const listenURLs = [...(o.listenPeerURL !== undefined ? [o.listenPeerURL] : []), ...(o.listenPeerURLs ?? [])].map(
      (u) => new URL(u),
    );
    const listen = listenURLs[0] ?? new URL('http://127.0.0.1:0');
    const token = o.clusterToken ?? 'boltkv-cluster';
    const specs = o.initialCluster.map((s) => ({ ...s, id: memberIdFor(s.peerURLs, token) }));
    const self = specs.find((s) => s.name === o.name);
    if (self === undefined)
      throw new ReplicationError('ERR_INVALID_ARGUMENT', `--initial-cluster has no member named ${o.name}`);
    const path = join(o.dataDir, 'boltkv.db');
    // A restart keeps the id its file lists; otherwise a new cluster's ids derive from the flags and
    // a member added later (its id mixes in the time) learns its id from the cluster.
    const own = o.advertisePeerURLs ?? self.peerURLs;
    let id = memberIdInFile(path, own, o.fileSystem);
    let fetched: MemberInfo[] | undefined;
    if (id === undefined && o.initialClusterState === 'existing') {
      const others = specs.filter((s) => s.name !== o.name).flatMap((s) => s.peerURLs);
      ({ id, members: fetched } = await memberIdFromPeers({ ownPeerURLs: own, otherPeerURLs: others }));
    }
    id ??= self.id;
    let member: Member | undefined;
    const transport = new PeerTransport({
      id,
      host: listen.hostname,
      port: Number(listen.port || 0),
      alsoListen: listenURLs.slice(1).map((u) => ({ host: u.hostname, port: Number(u.port || 0) })),
      ...(o.onSnapshotReceived !== undefined ? { onSnapshotReceived: o.onSnapshotReceived } : {}),
      resolve: (peer) => {
        const listed = member?.memberList().find((m) => m.id === peer)?.peerURLs;
        if (listed !== undefined && listed.length > 0) return listed;
        return (fetched?.find((m) => m.id === peer) ?? specs.find((s) => s.id === peer))?.peerURLs;
      },
    });
    const port = await transport.listen();
    mkdirSync(o.dataDir, { recursive: true });
    const initial: MemberInfo[] = specs.map((s) => ({
      id: s.id,
      name: s.name,
      peerURLs: s.peerURLs,
      clientURLs: [],
      isLearner: false,
    }));
    const {
      name: _n,
      dataDir: _d,
      listenPeerURL: _l,
      listenPeerURLs: _ls,
      advertisePeerURLs: _a,
      initialCluster: _i,
      initialClusterState,
      tickMs,
      onSnapshotReceived: _s,
      ...rest
    } = o;
    try {
      member = await Member.open({
        ...rest,
        name: o.name,
        clusterToken: token,
        id,
        path,
        send: (msgs) => transport.send(msgs),
        ...(initialClusterState === 'existing' ? {} : { initialCluster: initial }),
      });
    } catch (err) {
      await transport.close();
      throw err;
    }
    // The file is ours now and no peer can send yet: received copies a crash left are useless.
    const fs = o.fileSystem ?? nodeFileSystem;
    sweepReceivedSnapshots(path, (f) => fs.remove?.(f));
    transport.attach(member);
    const node = new ReplicatedNode(member, transport, port, `http://${listen.hostname}:${port}`);
    const m = member;
    node.timer = setInterval(() => m.tick(), tickMs ?? 100);
    node.timer.unref();
    return node;
  }

  /** Stops ticking, closes the member (finishing queued commits) and the transport. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.member.close();
    await this.transport.close();
  }

  /** Like a kill -9 for in-process tests: drop the network and stop, without a graceful close. */
  async crash(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.transport.close();
    await this.member.close().catch(() => undefined);
  }
}
