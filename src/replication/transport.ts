/**
 * Raft traffic between members over loopback (or any) TCP, framed as in frames.ts. One outgoing
 * connection per peer carries ordinary messages through a bounded queue; when the queue is full or
 * the peer cannot be reached, messages are dropped (raft retries) and the peer is reported
 * unreachable. Reconnects back off exponentially. Each snapshot travels on a connection of its own,
 * streamed from a read transaction in chunks, and the receiver's verdict is reported to raft.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { decodeMessage, encodeMessage, type Message, type SnapshotStatus } from '../raft/index.ts';
import { ReplicationError } from './errors.ts';
import { FrameReader, encodeFrame, type Frame } from './frames.ts';
import type { MemberInfo } from './proposal.ts';
import { mark, tracing } from './trace.ts';

/** What the transport needs from the member it serves. */
export interface PeerHandler {
  step(m: Message): void;
  reportUnreachable(id: number): void;
  reportSnapshot(id: number, status: SnapshotStatus): void;
  /** The consistent copy of the local file, in chunks (ends its read transaction when done). */
  snapshotChunks(): Generator<Uint8Array, void, undefined>;
  /** Store a received file, then step `m` (the snap message without data). */
  receiveSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** The member list a joining member asks for (fetchMemberList in member-join.ts). */
  memberList?(): MemberInfo[];
}

export interface TransportOptions {
  /** This member's id (messages from others addressed elsewhere are dropped). */
  id: number;
  /** Where to listen for peers. Default 127.0.0.1, port 0 (any free port). */
  host?: string;
  port?: number;
  /** Further addresses to listen on as well (etcd accepts several --listen-peer-urls). */
  alsoListen?: { host: string; port: number }[];
  /**
   * The peer URLs (http://host:port) of a member id, or undefined if unknown. With several, a
   * failed dial moves on to the next one (etcd members may advertise more than one).
   */
  resolve: (id: number) => string | readonly string[] | undefined;
  /** Messages queued per peer before new ones are dropped. Default 4096. */
  maxQueue?: number;
  /** Reconnect backoff bounds in ms. Defaults 20 and 1000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called once a received snapshot has been stored and stepped (e.g. to log it). */
  onSnapshotReceived?: (from: number, index: number) => void;
}

interface Peer {
  id: number;
  socket: Socket | undefined;
  connecting: boolean;
  queue: Uint8Array[];
  backoff: number;
  retryAt: number;
  timer: NodeJS.Timeout | undefined;
  snapshotting: boolean;
  /** Which of the peer's URLs to dial; advanced when a dial fails. */
  urlIndex: number;
}

/** Pending chunks of a snapshot stream; the socket pauses while too many wait. */
class ChunkQueue implements AsyncIterable<Uint8Array> {
  private items: Uint8Array[] = [];
  private done = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  constructor(
    private readonly onDrain: () => void,
    readonly highWater = 8,
  ) {}
  push(c: Uint8Array): boolean {
    this.items.push(c);
    this.wake?.();
    return this.items.length < this.highWater;
  }
  end(): void {
    this.done = true;
    this.wake?.();
  }
  fail(e: unknown): void {
    this.error = e;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const c = this.items.shift();
      if (c !== undefined) {
        if (this.items.length === 0) this.onDrain();
        yield c;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

export class PeerTransport {
  private readonly opts: Required<Omit<TransportOptions, 'host' | 'port' | 'onSnapshotReceived'>> & {
    host: string;
    port: number;
    onSnapshotReceived?: (from: number, index: number) => void;
  };
  private handler: PeerHandler | undefined;
  private readonly servers: Server[] = [];
  /** The bound port of each listening address, in order (the first is listen()'s answer). */
  readonly ports: number[] = [];
  private readonly peers = new Map<number, Peer>();
  private readonly inbound = new Set<Socket>();
  private closed = false;
  /** Counters for tests and status. */
  readonly stats = { sent: 0, dropped: 0, received: 0, snapshotsSent: 0, snapshotsReceived: 0 };

  constructor(opts: TransportOptions) {
    this.opts = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      maxQueue: opts.maxQueue ?? 4096,
      minBackoffMs: opts.minBackoffMs ?? 20,
      maxBackoffMs: opts.maxBackoffMs ?? 1000,
      id: opts.id,
      resolve: opts.resolve,
      ...(opts.onSnapshotReceived !== undefined ? { onSnapshotReceived: opts.onSnapshotReceived } : {}),
      alsoListen: opts.alsoListen ?? [],
    };
  }

  /** Connects the member (created after the transport, since it needs `send`). */
  attach(handler: PeerHandler): void {
    this.handler = handler;
  }

  /** Starts listening on every address; resolves with the first one's bound port. */
  async listen(): Promise<number> {
    try {
      for (const a of [{ host: this.opts.host, port: this.opts.port }, ...this.opts.alsoListen])
        this.ports.push(await this.listenOn(a.host, a.port));
    } catch (err) {
      await this.close();
      throw err;
    }
    return this.ports[0]!;
  }

  private listenOn(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = createServer((s) => this.accept(s));
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        this.servers.push(srv);
        const addr = srv.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  /** Queues messages for their peers (never blocks; drops when a peer's queue is full). */
  send(msgs: Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (m.type === 'snap') {
        this.sendSnapshot(m);
        continue;
      }
      const p = this.peer(m.to);
      if (p.queue.length >= this.opts.maxQueue) {
        this.stats.dropped++;
        this.handler?.reportUnreachable(m.to);
        continue;
      }
      p.queue.push(encodeFrame({ t: 'msg', m: encodeMessage(m) }));
      this.flush(p);
    }
  }

  private peer(id: number): Peer {
    let p = this.peers.get(id);
    if (p === undefined) {
      p = {
        id,
        socket: undefined,
        connecting: false,
        queue: [],
        backoff: 0,
        retryAt: 0,
        timer: undefined,
        snapshotting: false,
        urlIndex: 0,
      };
      this.peers.set(id, p);
    }
    return p;
  }

  private flush(p: Peer): void {
    if (p.socket === undefined) {
      this.dial(p);
      return;
    }
    const s = p.socket;
    while (p.queue.length > 0 && s.writableLength < 4 << 20) {
      if (tracing) mark('write', p.id);
      s.write(p.queue.shift()!);
      this.stats.sent++;
    }
  }

  private dial(p: Peer): void {
    if (p.connecting || this.closed || p.timer !== undefined) return;
    const wait = p.retryAt - Date.now();
    if (wait > 0) {
      p.timer = setTimeout(() => {
        p.timer = undefined;
        this.dial(p);
      }, wait);
      p.timer.unref();
      return;
    }
    const url = this.urlOf(p);
    if (url === undefined) {
      this.unreachable(p);
      return;
    }
    p.connecting = true;
    const { host, port } = hostPort(url);
    const s = connect({ host, port });
    s.setNoDelay(true);
    s.once('connect', () => {
      p.connecting = false;
      p.socket = s;
      p.backoff = 0;
      this.flush(p);
    });
    s.on('drain', () => this.flush(p));
    s.on('data', () => undefined); // nothing comes back on a message connection
    s.once('close', () => {
      if (p.connecting) p.urlIndex++; // never connected: try the next URL next time
      p.connecting = false;
      if (p.socket === s) p.socket = undefined;
      this.unreachable(p);
    });
    s.on('error', () => undefined); // 'close' follows
  }

  private urlOf(p: Peer): string | undefined {
    const r = this.opts.resolve(p.id);
    const urls = typeof r === 'string' ? [r] : (r ?? []);
    return urls.length === 0 ? undefined : urls[p.urlIndex % urls.length];
  }

  /** The peer could not be reached: drop what waits for it, tell raft, retry later. */
  private unreachable(p: Peer): void {
    if (this.closed) return;
    p.backoff = Math.min(this.opts.maxBackoffMs, Math.max(this.opts.minBackoffMs, p.backoff * 2));
    p.retryAt = Date.now() + p.backoff;
    if (p.queue.length > 0) {
      this.stats.dropped += p.queue.length;
      p.queue = [];
    }
    this.handler?.reportUnreachable(p.id);
  }

  private sendSnapshot(m: Message): void {
    const h = this.handler;
    const p = this.peer(m.to);
    const url = this.urlOf(p);
    if (h === undefined || url === undefined || p.snapshotting) {
      h?.reportSnapshot(m.to, 'failure');
      return;
    }
    p.snapshotting = true;
    const header = { ...m, snapshot: { ...m.snapshot!, data: new Uint8Array(0) } };
    const { host, port } = hostPort(url);
    const s = connect({ host, port });
    s.setNoDelay(true);
    let verdict: SnapshotStatus | undefined;
    const finish = (v: SnapshotStatus): void => {
      if (verdict !== undefined) return;
      verdict = v;
      p.snapshotting = false;
      if (v === 'finish') this.stats.snapshotsSent++;
      s.destroy();
      h.reportSnapshot(m.to, v);
    };
    const reader = new FrameReader();
    s.on('data', (d) => {
      try {
        for (const f of reader.push(d)) finish(f.t === 'ok' ? 'finish' : 'failure');
      } catch {
        finish('failure');
      }
    });
    s.once('close', () => finish('failure'));
    s.on('error', () => undefined);
    // Resolves when the socket can take more, or once it is gone (then no 'drain' ever comes).
    const writable = (): Promise<void> =>
      new Promise<void>((r) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          r();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    s.once('connect', () => {
      void (async () => {
        // The copy holds a read transaction on the leader's file: it must end however the send does.
        let chunks: Generator<Uint8Array, void, undefined> | undefined;
        try {
          chunks = h.snapshotChunks();
          s.write(encodeFrame({ t: 'snap', m: encodeMessage(header) }));
          for (const c of chunks) {
            if (verdict !== undefined) return;
            if (!s.write(encodeFrame({ t: 'chunk', d: c }))) await writable();
          }
          if (verdict === undefined) s.write(encodeFrame({ t: 'end' }));
        } catch {
          finish('failure');
        } finally {
          chunks?.return();
        }
      })();
    });
  }

  private accept(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    this.inbound.add(s);
    s.setNoDelay(true);
    s.once('close', () => this.inbound.delete(s));
    s.on('error', () => undefined);
    const reader = new FrameReader();
    let snap: ChunkQueue | undefined;
    s.on('data', (d) => {
      if (tracing) mark('data', d.length);
      let frames: Frame[];
      try {
        frames = reader.push(d);
      } catch {
        s.destroy();
        return;
      }
      for (const f of frames) {
        if (f.t === 'msg') {
          this.deliver(f.m);
        } else if (f.t === 'snap') {
          if (snap !== undefined) {
            s.destroy();
            return;
          }
          snap = this.receiveSnapshot(s, f.m);
        } else if (f.t === 'chunk' && snap !== undefined) {
          if (!snap.push(f.d)) s.pause();
        } else if (f.t === 'end' && snap !== undefined) {
          snap.end();
        } else if (f.t === 'members' && snap === undefined) {
          // not attached yet (still opening its file): no answer rather than an empty list
          const list = this.handler?.memberList?.();
          if (list === undefined) s.destroy();
          else s.end(encodeFrame({ t: 'list', l: list }));
          return;
        } else {
          s.destroy();
          return;
        }
      }
    });
    s.once('close', () => snap?.fail(new ReplicationError('ERR_CLOSED', 'snapshot stream closed early')));
  }

  private deliver(bytes: Uint8Array): void {
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch {
      return; // garbage from a peer is dropped like a lost message
    }
    if (m.to !== this.opts.id) return;
    this.stats.received++;
    this.handler?.step(m);
  }

  private receiveSnapshot(s: Socket, bytes: Uint8Array): ChunkQueue {
    const q = new ChunkQueue(() => s.resume());
    let m: Message | undefined;
    try {
      m = decodeMessage(bytes);
    } catch {
      m = undefined;
    }
    const h = this.handler;
    if (m === undefined || m.type !== 'snap' || m.to !== this.opts.id || h === undefined) {
      s.end(encodeFrame({ t: 'err', e: 'bad snapshot header' }));
      return q;
    }
    h.receiveSnapshot(m, q).then(
      () => {
        this.stats.snapshotsReceived++;
        this.opts.onSnapshotReceived?.(m.from, m.snapshot?.metadata.index ?? 0);
        s.end(encodeFrame({ t: 'ok' }));
      },
      (err: unknown) => s.end(encodeFrame({ t: 'err', e: String(err) })),
    );
    return q;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.peers.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.socket?.destroy();
      p.queue = [];
    }
    for (const s of this.inbound) s.destroy();
    await Promise.all(this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  }
}
