/**
 * `boltkv serve`: etcd's command line for the one-member gateway server. Flag names and defaults
 * are etcd 3.4's, so scripts that start etcd can start boltkv. The store lives where etcd keeps its
 * bolt file, `<data-dir>/member/snap/db`. SIGTERM or SIGINT stops it cleanly: no new requests,
 * in-flight writes finish and become durable, watches end, the file is closed; exit code 0.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../api/open.ts';
import { BoltkvError } from '../errors.ts';
import { type ClusterMemberSpec, parseInitialCluster, ReplicatedNode } from '../replication/index.ts';
import { createLogger, isLogLevel, type LogLevel } from './logger.ts';
import { DEFAULT_MAX_REQUEST_BYTES, serve } from './serve.ts';

export interface ServeCommandIO {
  /** Ends the server like SIGTERM does (tests, embedding). */
  signal?: AbortSignal;
  /** Help text and usage errors (default: process.stdout / process.stderr). */
  out?: (s: string) => void;
  err?: (s: string) => void;
  /** Listen for SIGTERM/SIGINT (default true). */
  handleSignals?: boolean;
}

interface Flag {
  name: string;
  def: string;
  help: string;
}

const FLAGS: readonly Flag[] = [
  { name: 'name', def: 'default', help: 'Human-readable name for this member.' },
  {
    name: 'data-dir',
    def: '<name>.etcd',
    help: 'Path to the data directory (the store is <data-dir>/member/snap/db).',
  },
  {
    name: 'listen-client-urls',
    def: 'http://localhost:2379',
    help: 'List of URLs to listen on for client traffic (comma-separated, http only).',
  },
  {
    name: 'advertise-client-urls',
    def: 'http://localhost:2379',
    help: "List of this member's client URLs to advertise (member list).",
  },
  {
    name: 'max-request-bytes',
    def: String(DEFAULT_MAX_REQUEST_BYTES),
    help: 'Maximum client request size in bytes the server will accept.',
  },
  {
    name: 'quota-backend-bytes',
    def: '0',
    help: "Raise the NOSPACE alarm and refuse writes when the backend exceeds this size (0: etcd's default, 2 GiB).",
  },
  {
    name: 'listen-peer-urls',
    def: 'http://localhost:2380',
    help: 'URLs to listen on for peer traffic (comma-separated http URLs; used with --initial-cluster).',
  },
  {
    name: 'initial-advertise-peer-urls',
    def: 'http://localhost:2380',
    help: "This member's peer URLs to advertise to the rest of the cluster.",
  },
  {
    name: 'initial-cluster',
    def: '',
    help: 'Initial cluster configuration for bootstrapping, name=peerURL,... (without it: one member, no raft).',
  },
  {
    name: 'initial-cluster-state',
    def: 'new',
    help: "Initial cluster state ('new' or 'existing': join after member add).",
  },
  {
    name: 'initial-cluster-token',
    def: 'etcd-cluster',
    help: 'Initial cluster token for the cluster during bootstrap (member and cluster ids derive from it).',
  },
  {
    name: 'heartbeat-interval',
    def: '100',
    help: 'Time (in milliseconds) of a heartbeat interval (one raft tick; an election takes 10).',
  },
  {
    name: 'snapshot-count',
    def: '10000',
    help: "Number of committed transactions to trigger a snapshot to disk (etcd 3.4's default is 100000).",
  },
  {
    name: 'experimental-snapshot-catchup-entries',
    def: '5000',
    help: 'Number of entries kept behind a snapshot for slow followers to catch up from the log (as in etcd 3.5).',
  },
  {
    name: 'log-level',
    def: 'info',
    help: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.',
  },
];

export function serveHelp(): string {
  const rows = FLAGS.map((f) => `  --${f.name}${f.def === '' ? '' : ` '${f.def}'`}\n        ${f.help}`);
  return [
    'usage: boltkv serve [flags]',
    '',
    "Serves etcd 3.4's HTTP/JSON API from a boltkv store: one member, or with --initial-cluster a raft member.",
    '',
    'Flags:',
    ...rows,
    '  --help\n        Show this help.',
    '',
  ].join('\n');
}

class UsageError extends BoltkvError {
  declare readonly code: 'ERR_USAGE';
  constructor(message: string) {
    super('ERR_USAGE', message);
    this.name = 'UsageError';
  }
}

function parse(argv: readonly string[]): Map<string, string> | 'help' {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h' || a === '-help') return 'help';
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(a);
    if (m === null) throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
    const name = m[1] as string;
    if (!FLAGS.some((f) => f.name === name)) throw new UsageError(`flag provided but not defined: -${name}`);
    let v = m[2];
    if (v === undefined) {
      v = argv[i + 1];
      if (v === undefined) throw new UsageError(`flag needs an argument: -${name}`);
      i++;
    }
    values.set(name, v);
  }
  return values;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n))
    throw new UsageError(`invalid value ${JSON.stringify(v)} for flag -${name}: parse error`);
  return n;
}

/** Runs `boltkv serve` until SIGTERM/SIGINT (or `io.signal`); resolves with the exit code. */
export async function runServe(argv: readonly string[], io: ServeCommandIO = {}): Promise<number> {
  const out = io.out ?? ((s: string) => void process.stdout.write(s));
  const err = io.err ?? ((s: string) => void process.stderr.write(s));
  let flags: Map<string, string>;
  let opts: {
    name: string;
    dataDir: string;
    listen: string[];
    advertise: string[];
    maxRequestBytes: number;
    quotaBackendBytes: number;
    logLevel: LogLevel;
    cluster?: {
      listenPeerURLs: string[];
      advertisePeerURLs: string[];
      initialCluster: ClusterMemberSpec[];
      state: 'new' | 'existing';
      token: string;
      tickMs: number;
      snapshotCount: number;
      catchUpEntries: number;
    };
  };
  try {
    const parsed = parse(argv);
    if (parsed === 'help') {
      out(serveHelp());
      return 0;
    }
    flags = parsed;
    const name = flags.get('name') ?? 'default';
    const list = (k: string, def = 'http://localhost:2379'): string[] =>
      (flags.get(k) ?? def)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    const maxRequestBytes = positiveInt(
      'max-request-bytes',
      flags.get('max-request-bytes') ?? String(DEFAULT_MAX_REQUEST_BYTES),
    );
    if (maxRequestBytes === 0) throw new UsageError('--max-request-bytes must be positive');
    const quotaBackendBytes = positiveInt('quota-backend-bytes', flags.get('quota-backend-bytes') ?? '0');
    const rawLevel = flags.get('log-level') ?? 'info';
    const level = rawLevel === 'panic' || rawLevel === 'fatal' ? 'error' : rawLevel;
    if (!isLogLevel(level))
      throw new UsageError(
        `invalid --log-level ${JSON.stringify(rawLevel)}: only debug, info, warn, error, panic, or fatal`,
      );
    let cluster: NonNullable<typeof opts.cluster> | undefined;
    const initial = flags.get('initial-cluster');
    if (initial !== undefined) {
      let parsedCluster: Map<string, string[]>;
      try {
        parsedCluster = parseInitialCluster(initial);
      } catch (e) {
        throw new UsageError(`invalid --initial-cluster: ${(e as Error).message}`);
      }
      if (!parsedCluster.has(name))
        throw new UsageError(
          `--initial-cluster ${JSON.stringify(initial)} has no member named ${JSON.stringify(name)}`,
        );
      const state = flags.get('initial-cluster-state') ?? 'new';
      if (state !== 'new' && state !== 'existing')
        throw new UsageError(`invalid --initial-cluster-state ${JSON.stringify(state)}: 'new' or 'existing'`);
      const peerListen = list('listen-peer-urls', 'http://localhost:2380');
      if (peerListen.length === 0) throw new UsageError('--listen-peer-urls needs at least one URL');
      for (const u of peerListen) checkHttpURL('listen-peer-urls', u);
      const advertisePeers = flags.has('initial-advertise-peer-urls')
        ? list('initial-advertise-peer-urls', '')
        : (parsedCluster.get(name) ?? []);
      for (const u of advertisePeers) checkHttpURL('initial-advertise-peer-urls', u);
      const own = [...(parsedCluster.get(name) ?? [])].sort().join(',');
      if ([...advertisePeers].sort().join(',') !== own)
        throw new UsageError(
          `--initial-advertise-peer-urls ${advertisePeers.join(',')} do not match ${name}'s URLs in --initial-cluster (${own})`,
        );
      const tickMs = positiveInt('heartbeat-interval', flags.get('heartbeat-interval') ?? '100');
      if (tickMs === 0) throw new UsageError('--heartbeat-interval must be positive');
      const snapshotCount = positiveInt('snapshot-count', flags.get('snapshot-count') ?? '10000');
      if (snapshotCount === 0) throw new UsageError('--snapshot-count must be positive');
      const catchUpEntries = positiveInt(
        'experimental-snapshot-catchup-entries',
        flags.get('experimental-snapshot-catchup-entries') ?? '5000',
      );
      cluster = {
        listenPeerURLs: peerListen,
        advertisePeerURLs: advertisePeers,
        initialCluster: [...parsedCluster].map(([n, peerURLs]) => ({ name: n, peerURLs })),
        state,
        token: flags.get('initial-cluster-token') ?? 'etcd-cluster',
        tickMs,
        snapshotCount,
        catchUpEntries,
      };
    }
    opts = {
      name,
      dataDir: flags.get('data-dir') ?? `${name}.etcd`,
      listen: list('listen-client-urls'),
      advertise: list('advertise-client-urls'),
      maxRequestBytes,
      quotaBackendBytes,
      logLevel: level,
      ...(cluster !== undefined ? { cluster } : {}),
    };
  } catch (e) {
    if (e instanceof UsageError) {
      err(`Error: ${e.code}: ${e.message} (see boltkv serve --help)\n`);
      return 2;
    }
    throw e;
  }

  const log = createLogger(opts.logLevel);
  let server: Awaited<ReturnType<typeof serve>>;
  let node: ReplicatedNode | undefined;
  if (opts.cluster !== undefined) {
    const c = opts.cluster;
    try {
      mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      node = await ReplicatedNode.start({
        name: opts.name,
        dataDir: join(opts.dataDir, 'member'),
        listenPeerURLs: c.listenPeerURLs,
        advertisePeerURLs: c.advertisePeerURLs,
        initialCluster: c.initialCluster,
        initialClusterState: c.state,
        clusterToken: c.token,
        tickMs: c.tickMs,
        snapshotCount: c.snapshotCount,
        catchUpEntries: c.catchUpEntries,
        onSnapshotReceived: (from, index) => log.info('received a snapshot', { from: from.toString(16), index }),
        clientURLs: opts.advertise,
        quotaBackendBytes: opts.quotaBackendBytes,
      });
    } catch (e) {
      log.error('cannot start the cluster member', { dataDir: opts.dataDir, error: describe(e) });
      return 1;
    }
    log.info('serving peer traffic', { name: opts.name, peerURL: node.peerURL, memberId: node.member.id.toString(16) });
    try {
      server = await serve({
        kv: node.member,
        listen: opts.listen,
        advertise: opts.advertise,
        name: opts.name,
        maxRequestBytes: opts.maxRequestBytes,
        logger: log,
        cluster: { api: node.member, memberId: node.member.id, token: c.token, peerURLs: c.advertisePeerURLs },
      });
    } catch (e) {
      log.error('cannot serve', { error: describe(e) });
      await node.close();
      return 1;
    }
  } else {
    let kv: Awaited<ReturnType<typeof openStore>>;
    try {
      const dir = join(opts.dataDir, 'member', 'snap');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      kv = await openStore(join(dir, 'db'), { quotaBackendBytes: opts.quotaBackendBytes });
    } catch (e) {
      log.error('cannot open the data directory', { dataDir: opts.dataDir, error: describe(e) });
      return 1;
    }
    try {
      server = await serve({
        kv,
        listen: opts.listen,
        advertise: opts.advertise,
        name: opts.name,
        maxRequestBytes: opts.maxRequestBytes,
        logger: log,
        closeKv: true,
      });
    } catch (e) {
      log.error('cannot serve', { error: describe(e) });
      await kv.close();
      return 1;
    }
  }

  await new Promise<void>((resolve) => {
    const stop = (why: string): void => {
      log.debug('received stop request', { why });
      cleanup();
      resolve();
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    const onAbort = (): void => stop('abort');
    const handle = io.handleSignals !== false;
    if (handle) {
      process.once('SIGTERM', onTerm);
      process.once('SIGINT', onInt);
    }
    io.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = (): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      io.signal?.removeEventListener('abort', onAbort);
    };
    if (io.signal?.aborted === true) stop('abort');
  });
  try {
    await server.close();
    // The member closes after its clients: queued commits finish, then the peer listener stops.
    await node?.close();
  } catch (e) {
    log.error('stop failed', { error: describe(e) });
    return 1;
  }
  return 0;
}

function checkHttpURL(flag: string, u: string): void {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new UsageError(`invalid value ${JSON.stringify(u)} for flag -${flag}: not a URL`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`--${flag}: only http:// peer URLs are supported, got ${u}`);
}

function describe(e: unknown): string {
  if (e instanceof BoltkvError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
