/**
 * `boltkv serve` cluster members as child processes through the real CLI entry (src/cli/main.ts, what
 * bin/boltkv runs), started with etcd's cluster flags on loopback. Client ports are 0 (never raced
 * for); the member logs the one it got.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { raw } from '../server/support.ts';

export interface ServeProc {
  name: string;
  /** The client URL the member listens on, read from its "serving client traffic" log line. */
  client: Promise<string>;
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

export interface ServeProcOptions {
  state?: 'new' | 'existing';
  token: string;
  /** Where to listen for peers when it differs from the advertised `peer` (a proxy in front). */
  listenPeer?: string;
  /** More flags after the cluster ones. */
  extra?: readonly string[];
}

export function startServe(
  dir: string,
  name: string,
  peer: string,
  initialCluster: string,
  opts: ServeProcOptions,
): ServeProc {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=boltkv-source',
      join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts'),
      'serve',
      '--name',
      name,
      '--data-dir',
      join(dir, name),
      '--listen-client-urls',
      'http://127.0.0.1:0',
      '--listen-peer-urls',
      opts.listenPeer ?? peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      opts.state ?? 'new',
      '--initial-cluster-token',
      opts.token,
      '--heartbeat-interval',
      '100',
      '--log-level',
      'info',
      ...(opts.extra ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const client = new Promise<string>((resolve, reject) => {
    const look = (): void => {
      for (const line of stderr.split('\n')) {
        if (!line.includes('"serving client traffic"')) continue;
        child.stderr?.off('data', look);
        resolve((JSON.parse(line) as { urls: string[] }).urls[0] as string);
        return;
      }
    };
    child.stderr?.on('data', look);
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before serving: ${stderr}`)));
  });
  client.catch(() => undefined);
  return { name, client, child, exited, stderr: () => stderr };
}

/** POST a JSON body to a gateway path; the answer's status and parsed body. */
export async function postJson(
  url: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await raw(url, path, JSON.stringify(body));
  return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
}

/** SIGTERM to every member still running; resolves to the exit codes of all (each should be 0). */
export async function stopServes(procs: readonly ServeProc[]): Promise<(number | null)[]> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return Promise.all(procs.map((p) => p.exited));
}

/** Cleanup for a finally block: SIGKILL whatever still runs and wait for every exit. */
export async function killServes(procs: readonly ServeProc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}
