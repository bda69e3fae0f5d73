/**
 * One etcd Watch RPC stream on the server, independent of transport (chunked HTTP or WebSocket).
 * On top of the store's WatchStream it adds what etcd's serverWatchStream does: client-chosen watch
 * ids and the duplicate-id answer, the `created` response, the empty-range refusal, fragments of
 * responses above max-request-bytes, and the full response header. The sink reports backpressure;
 * while it is full nothing more is pulled from the store's stream, whose own buffer is bounded
 * (watchers behind it are parked and caught up from history later), so a slow or vanished client
 * costs bounded memory and never holds up writes.
 */
import { BoltkvError } from '../errors.ts';
import type { Decoded } from '../gateway/codec.ts';
import { GRPC_OVERHEAD_BYTES, protoSize } from '../gateway/proto-size.ts';
import type { WatchResponse, WatchStream } from '../watch/types.ts';
import type { EtcdService } from './etcd-service.ts';
import type { ServedKV } from './served-kv.ts';

export interface WatchSink {
  /** Sends one WatchResponse (boltkv shape, header complete). False when the transport is full. */
  send(resp: Record<string, unknown>): boolean;
  /** Resolves when the transport can take more (or is gone). */
  drained(): Promise<void>;
}

interface ClientWatch {
  hubId: number;
  fragment: boolean;
}

export class WatchSession {
  readonly #kv: ServedKV;
  readonly #service: EtcdService;
  readonly #sink: WatchSink;
  #stream: WatchStream | undefined;
  /** Client watch id → the store stream's id; and back. */
  readonly #byClient = new Map<number, ClientWatch>();
  readonly #byHub = new Map<number, number>();
  #nextId = 0;
  #closed = false;
  /** Requests run one after another, in arrival order. */
  #chain: Promise<void> = Promise.resolve();

  constructor(kv: ServedKV, service: EtcdService, sink: WatchSink) {
    this.#kv = kv;
    this.#service = service;
    this.#sink = sink;
  }

  get watchCount(): number {
    return this.#byClient.size;
  }

  /** Queues one decoded WatchRequest; answers go to the sink. */
  handle(req: Decoded): Promise<void> {
    this.#chain = this.#chain.then(() => this.#handle(req));
    return this.#chain;
  }

  async #handle(req: Decoded): Promise<void> {
    if (this.#closed) return;
    if (req.createRequest !== undefined) await this.#create(req.createRequest as Decoded);
    else if (req.cancelRequest !== undefined) await this.#cancel(req.cancelRequest as Decoded);
    else if (req.progressRequest !== undefined) {
      // etcd 3.4 answers a progress request at once with its current revision, for the whole
      // stream (watch_id -1), in order with the other control answers.
      const revision = await this.#service.currentRevision();
      this.#send({ header: this.#service.header(revision), watchId: -1 });
    }
  }

  #ensureStream(): WatchStream {
    if (this.#stream === undefined) {
      this.#stream = this.#kv.watchStream();
      void this.#pump(this.#stream);
    }
    return this.#stream;
  }

  async #create(c: Decoded): Promise<void> {
    const revision = await this.#service.currentRevision();
    if (this.#closed) return;
    const stream = this.#ensureStream();
    const asked = typeof c.watchId === 'number' ? c.watchId : 0;
    // etcd refuses an empty range before it looks at the id.
    if (emptyRange(c.key, c.rangeEnd)) {
      this.#send({
        header: this.#service.header(revision),
        watchId: -1,
        created: true,
        canceled: true,
        cancelReason: 'mvcc: watcher range is empty',
      });
      return;
    }
    if (asked !== 0 && this.#byClient.has(asked)) {
      this.#send({
        header: this.#service.header(revision),
        watchId: -1,
        created: true,
        canceled: true,
        cancelReason: 'mvcc: duplicate watch ID provided on the WatchStream',
      });
      return;
    }
    let hubId: number;
    try {
      hubId = stream.create({
        key: c.key instanceof Uint8Array ? c.key : new Uint8Array(0),
        rangeEnd: c.rangeEnd instanceof Uint8Array ? c.rangeEnd : undefined,
        startRevision: startRevision(c.startRevision),
        prevKv: c.prevKv === true,
        progressNotify: c.progressNotify === true,
        filters: Array.isArray(c.filters) ? (c.filters as ('NOPUT' | 'NODELETE')[]) : undefined,
      });
    } catch (e) {
      if (!(e instanceof BoltkvError)) throw e;
      const reason = e.code === 'ERR_EMPTY_WATCH_RANGE' ? 'mvcc: watcher range is empty' : e.message;
      this.#send({
        header: this.#service.header(revision),
        watchId: -1,
        created: true,
        canceled: true,
        cancelReason: reason,
      });
      return;
    }
    let id = asked;
    if (id === 0) {
      // etcd's auto ids: the next free one counting up; client-chosen ids are skipped over.
      while (this.#byClient.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    }
    this.#byClient.set(id, { hubId, fragment: c.fragment === true });
    this.#byHub.set(hubId, id);
    this.#send({ header: this.#service.header(revision), watchId: id, created: true });
  }

  async #cancel(c: Decoded): Promise<void> {
    const id = typeof c.watchId === 'number' ? c.watchId : 0;
    const w = this.#byClient.get(id);
    if (w === undefined || this.#stream === undefined) return; // etcd does not answer an unknown id
    // Forget the id first: the store's own cancel answer is then dropped, and ours goes out in
    // request order, as etcd's control answers do.
    this.#byClient.delete(id);
    if (this.#byHub.delete(w.hubId)) this.#stream.cancel(w.hubId);
    const revision = await this.#service.currentRevision();
    this.#send({ header: this.#service.header(revision), watchId: id, canceled: true });
  }

  async #pump(stream: WatchStream): Promise<void> {
    for await (const resp of stream) {
      if (this.#closed) break;
      if (!this.#deliver(resp)) await this.#sink.drained();
    }
  }

  /** Maps a store response to etcd's; false when the sink asked to wait. */
  #deliver(resp: WatchResponse): boolean {
    const hubId = resp.watchId ?? -1;
    const id = hubId === -1 ? -1 : this.#byHub.get(hubId);
    if (id === undefined) return true; // a response for a watch this session never announced
    const out: Record<string, unknown> = {
      header: this.#service.header(resp.compactRevision !== undefined ? undefined : resp.header.revision),
      watchId: id,
      canceled: resp.canceled === true,
      compactRevision: resp.compactRevision,
      cancelReason: resp.cancelReason,
      events: resp.events,
    };
    const w = this.#byClient.get(id);
    // A watch the store ended (compaction) keeps its id until the client cancels it: etcd then
    // still answers the cancel, and refuses the id to a new watch meanwhile.
    if (resp.canceled === true) this.#byHub.delete(hubId);
    if (w?.fragment === true) return this.#sendFragments(out, resp.events);
    return this.#send(out);
  }

  /**
   * etcd's fragmenting: a response with several events whose protobuf size reaches the watch
   * server's limit (max-request-bytes plus gRPC's 512 KiB allowance, as etcd 3.4 sets it) goes in
   * pieces, each but the last marked `fragment`.
   */
  #sendFragments(out: Record<string, unknown>, events: WatchResponse['events']): boolean {
    const max = this.#service.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    if (events.length < 2 || protoSize('WatchResponse', out) < max) return this.#send(out);
    let ok = true;
    let i = 0;
    while (i < events.length) {
      const part: WatchResponse['events'] = [];
      while (i < events.length) {
        part.push(events[i] as WatchResponse['events'][number]);
        if (part.length > 1 && protoSize('WatchResponse', { ...out, events: part, fragment: true }) >= max) {
          part.pop();
          break;
        }
        i++;
      }
      ok = this.#send({ ...out, events: part, fragment: i < events.length }) && ok;
    }
    return ok;
  }

  #send(resp: Record<string, unknown>): boolean {
    if (this.#closed) return true;
    return this.#sink.send(resp);
  }

  /** The client went away or the server is stopping: cancel every watch, free the stream. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream?.close();
    this.#byClient.clear();
    this.#byHub.clear();
  }
}

/** A start revision beyond 2^53 is in the future for any store: the largest safe one says so. */
function startRevision(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return v > 0n ? Number.MAX_SAFE_INTEGER : -1;
  return 0;
}

/** etcd's rule: a range end that is set, is not "\0", and does not sort after the key matches nothing. */
function emptyRange(key: unknown, end: unknown): boolean {
  if (!(end instanceof Uint8Array) || end.length === 0 || (end.length === 1 && end[0] === 0)) return false;
  const k = key instanceof Uint8Array ? key : new Uint8Array(0);
  return (
    Buffer.compare(
      Buffer.from(k.buffer, k.byteOffset, k.length),
      Buffer.from(end.buffer, end.byteOffset, end.length),
    ) >= 0
  );
}
