/**
 * A real etcd cluster of N members on loopback free ports, for fault tests: members can be killed
 * (SIGKILL, no goodbye) and the rest keep quorum. Stops everything and removes its data dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../support/etcd.ts';

export interface EtcdCluster {
  /** Client URLs, member i at index i. */
  urls: string[];
  /** SIGKILL member i and wait for it to exit. */
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
}

async function ports(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export async function startEtcdCluster(n = 3, timeoutMs = 30_000): Promise<EtcdCluster> {
  const p = await ports(2 * n);
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-cluster-'));
  const names = Array.from({ length: n }, (_, i) => `m${i}`);
  const urls = names.map((_, i) => `http://127.0.0.1:${p[i]!}`);
  const peers = names.map((_, i) => `http://127.0.0.1:${p[n + i]!}`);
  const initial = names.map((nm, i) => `${nm}=${peers[i]!}`).join(',');
  const children: (ChildProcess | undefined)[] = [];
  const exits: Promise<void>[] = [];
  let stderr = '';
  for (let i = 0; i < n; i++) {
    const child = spawn(
      'etcd',
      [
        '--name',
        names[i]!,
        '--data-dir',
        join(dir, names[i]!),
        '--listen-client-urls',
        urls[i]!,
        '--advertise-client-urls',
        urls[i]!,
        '--listen-peer-urls',
        peers[i]!,
        '--initial-advertise-peer-urls',
        peers[i]!,
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `boltkv-${p[0]!}`,
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-10_000);
    });
    children.push(child);
    exits.push(new Promise((r) => child.on('exit', () => r())));
  }
  const kill = async (i: number): Promise<void> => {
    const c = children[i];
    if (c === undefined) return;
    children[i] = undefined;
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await exits[i];
  };
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((_, i) => kill(i)));
    rmSync(dir, { recursive: true, force: true });
  };
  // Up when every member answers a linearizable range (so a leader exists).
  const deadline = Date.now() + timeoutMs;
  for (const url of urls) {
    for (;;) {
      try {
        const res = await fetch(`${url}/v3/kv/range`, {
          method: 'POST',
          body: '{"key":"AA=="}',
          signal: AbortSignal.timeout(2000),
        });
        if (res.status === 200) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`etcd cluster did not come up: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { urls, kill, stop };
}
