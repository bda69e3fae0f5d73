/**
 * Members on real files talking raft over loopback TCP, for tests: one temp directory, one data
 * directory per member name, free loopback peer ports, and a teardown that closes every member,
 * optionally checks every member's file, and removes the directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { type ClusterMemberSpec, type NodeOptions, ReplicatedNode } from '../../src/replication/node.ts';
import { freePort } from './etcd.ts';
import { eventually } from './eventually.ts';

/** A loopback URL on a free port. */
export async function loopbackURL(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** One member spec per name, each with one free loopback peer URL. */
export async function clusterSpec(names: readonly string[]): Promise<ClusterMemberSpec[]> {
  const spec: ClusterMemberSpec[] = [];
  for (const name of names) spec.push({ name, peerURLs: [await loopbackURL()] });
  return spec;
}

/** Retries a write the cluster could not take yet (no leader known, or an election under way). */
export async function retryUnavailable<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i > 100 || !(isBoltkvError(e, 'ERR_NO_LEADER') || isBoltkvError(e, 'ERR_TIMEOUT'))) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

type StartOptions = Partial<Omit<NodeOptions, 'name' | 'dataDir' | 'initialCluster'>>;

export class TestNodes {
  readonly dir: string;
  /** The running members by name (a test may delete one it crashed). */
  readonly nodes = new Map<string, ReplicatedNode>();
  private readonly started = new Set<string>();

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  dataDir(name: string): string {
    return join(this.dir, name);
  }

  /**
   * Starts member `name` of `cluster` in its data directory, listening on its first peer URL in
   * the spec unless told otherwise, with 20 ms ticks unless told otherwise.
   */
  async start(name: string, cluster: ClusterMemberSpec[], opts: StartOptions = {}): Promise<ReplicatedNode> {
    const own = cluster.find((s) => s.name === name);
    const listenPeerURL = opts.listenPeerURL ?? own?.peerURLs[0];
    if (listenPeerURL === undefined) throw new Error(`no peer URL for ${name}`);
    const node = await ReplicatedNode.start({
      tickMs: 20,
      ...opts,
      name,
      dataDir: this.dataDir(name),
      listenPeerURL,
      initialCluster: cluster,
    });
    this.nodes.set(name, node);
    this.started.add(name);
    return node;
  }

  /** The running member that knows itself to be leader, once there is one. */
  leader(): Promise<ReplicatedNode> {
    return eventually('a leader', () =>
      [...this.nodes.values()].find((n) => !n.member.isClosed && n.member.memberStatus().leader === n.member.id),
    );
  }

  /** Closes every member; with `check`, every started member's file must pass check(). */
  async close(o: { check?: boolean } = {}): Promise<void> {
    try {
      for (const n of this.nodes.values()) await n.close().catch(() => undefined);
      if (o.check === true) {
        for (const name of this.started) {
          const f = join(this.dataDir(name), 'boltkv.db');
          if (!existsSync(f)) continue;
          const db = open(f);
          try {
            assert.deepEqual(db.check(), [], `${name}: check()`);
          } finally {
            db.close();
          }
        }
      }
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
