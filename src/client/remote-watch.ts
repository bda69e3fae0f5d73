/**
 * etcd's watch over the gateway's WebSocket (`ws://member/v3/watch`), with the in-process
 * semantics on top: `create()` answers an id at once, the stream's own `created` answers stay
 * inside, and a broken connection is invisible to the caller. When the socket drops (member killed,
 * ping unanswered, garbage on the wire), the stream connects to another endpoint and re-creates
 * every watch from the revision after the last event it delivered, dropping anything at or below
 * that revision, so nothing is lost or repeated. A resume below the compaction revision gets etcd's
 * compacted cancel like any other watch. If no endpoint takes the stream within
 * `reconnectTimeoutMs`, iteration throws a ClientError.
 *
 * Client ids are ours and stable; the server's ids change with each connection and are mapped by
 * the order of `created` answers, which etcd sends in the order of the create requests.
 */
import WebSocket from 'ws';
import { BoltkvError } from '../errors.ts';
import { MvccError } from '../mvcc/errors.ts';
import { WatchError } from '../watch/errors.ts';
import { parseWatchRequest } from '../watch/validate.ts';
import { DUPLICATE_WATCH_ID } from '../watch/watch-stream.ts';
import type { WatchRequest, WatchResponse, WatchStream, Watcher } from '../watch/types.ts';
import type { Endpoint, EndpointPool } from './endpoints.ts';
import { ClientError } from './errors.ts';
import { ResponseQueue } from './response-queue.ts';
import { newWatchState, resumePoint, undelivered, type WatchState } from './watch-resume.ts';
import { decodeWatchMessage, encodeWatchCreate } from './wire.ts';

export interface RemoteWatchOptions {
  /** How long one connection attempt may take. */
  connectTimeoutMs: number;
  /** Give up (iteration throws) after this long without any endpoint accepting the stream. */
  reconnectTimeoutMs: number;
  /** Responses buffered before reading from the socket pauses. */
  highWater: number;
  /** A ping every this many ms; a connection that does not answer by the next one is dropped. 0: off. */
  pingIntervalMs: number;
  /** Largest WebSocket message accepted. */
  maxMessageBytes: number;
}

export class RemoteWatchStream implements WatchStream {
  readonly #pool: EndpointPool;
  readonly #opts: RemoteWatchOptions;
  /** Standalone Watcher mode: no watch ids on responses, a progress answer is the watch's own. */
  readonly #single: boolean;
  readonly #queue: ResponseQueue<WatchResponse>;
  readonly #watches = new Map<number, WatchState>();
  readonly #byServer = new Map<number, WatchState>();
  /** Watches whose create went out on the current socket, waiting for `created`, in order. */
  #awaitingCreated: WatchState[] = [];
  #ws: WebSocket | undefined;
  #connecting = false;
  /** Ids in use on this stream: running watches and ones ended by compaction until canceled. */
  readonly #ids = new Set<number>();
  /** Compacted watches: their server id (if on the current connection), kept until canceled. */
  readonly #held = new Map<number, number | undefined>();
  #nextId = 0;
  /**
   * createdNotify: answers made here (refusals, cancels) wait behind earlier creates whose `created`
   * has not come from the server yet, so the caller sees them in request order, as from etcd.
   */
  #outbox: ({ st: WatchState } | { make: () => WatchResponse })[] = [];
  #closed = false;
  #progressPending = false;
  #lastRevision = 0;
  #downSince: number | undefined;
  /** The current socket has delivered a valid answer. */
  #healthy = false;
  #lastError: ClientError | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  readonly #onClose: (s: RemoteWatchStream) => void;

  /** Answer as etcd's Watch RPC does (WatchStreamOptions.createdNotify); otherwise as clientv3 shows a stream. */
  readonly #rpc: boolean;

  constructor(
    pool: EndpointPool,
    opts: RemoteWatchOptions,
    single: boolean,
    onClose: (s: RemoteWatchStream) => void,
    rpc = false,
  ) {
    this.#pool = pool;
    this.#opts = opts;
    this.#single = single;
    this.#rpc = rpc && !single;
    this.#onClose = onClose;
    this.#queue = new ResponseQueue<WatchResponse>(opts.highWater, (paused) => {
      if (paused) this.#ws?.pause();
      else this.#ws?.resume();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Watches still running (for the standalone Watcher). */
  get size(): number {
    return this.#watches.size;
  }

  create(req: WatchRequest): number {
    if (this.#closed) throw new WatchError('ERR_CLOSED', 'watch stream is closed');
    let start: number;
    let asked: number;
    try {
      const settings = parseWatchRequest(req);
      start = settings.startRevision;
      asked = this.#single ? 0 : settings.watchId;
      encodeWatchCreate(this.#wireRequest(req), start);
    } catch (e) {
      if (e instanceof MvccError) throw new WatchError('ERR_INVALID_WATCH_REQUEST', e.message);
      // etcd's server refuses an empty range inside the stream, not as an error of the call.
      if (this.#rpc && e instanceof WatchError && e.code === 'ERR_EMPTY_WATCH_RANGE')
        return this.#refuse('mvcc: watcher range is empty');
      throw e;
    }
    if (asked !== 0 && this.#ids.has(asked)) {
      if (this.#rpc) return this.#refuse(DUPLICATE_WATCH_ID);
      throw new WatchError('ERR_DUPLICATE_WATCH_ID', DUPLICATE_WATCH_ID);
    }
    let id = asked;
    if (id === 0) {
      while (this.#ids.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    }
    const signal = req.signal;
    const st = newWatchState(id, this.#wireRequest(req), start, !this.#rpc);
    this.#ids.add(id);
    this.#watches.set(st.id, st);
    if (this.#rpc) this.#outbox.push({ st });
    if (signal !== undefined) {
      if (signal.aborted) {
        if (this.#single) this.close();
        else this.cancel(st.id);
        return st.id;
      }
      const onAbort = (): void => (this.#single ? this.close() : this.cancel(st.id));
      signal.addEventListener('abort', onAbort, { once: true });
      st.detachSignal = () => signal.removeEventListener('abort', onAbort);
    }
    if (this.#ws !== undefined && this.#ws.readyState === WebSocket.OPEN) this.#sendCreate(st);
    else this.#ensureConnected();
    return st.id;
  }

  /** What goes to the server: ids are ours (mapped by answer order), the signal stays here. */
  #wireRequest(req: WatchRequest): WatchRequest {
    const { signal: _s, watchId: _w, startRevision: _r, ...rest } = req;
    return rest;
  }

  /** A create refused in the stream, as etcd answers it. */
  #refuse(reason: string): number {
    this.#emit(() => ({
      header: { revision: this.#lastRevision },
      events: [],
      watchId: -1,
      created: true,
      canceled: true,
      cancelReason: reason,
    }));
    return -1;
  }

  /** Queue an answer made here, after any `created` still owed to the caller. */
  #emit(make: () => WatchResponse): void {
    if (this.#outbox.length === 0) this.#queue.push(make());
    else this.#outbox.push({ make });
  }

  #announce(st: WatchState, revision: number): void {
    if (st.announced) return;
    st.announced = true;
    const i = this.#outbox.findIndex((e) => 'st' in e && e.st === st);
    const resp: WatchResponse = { header: { revision }, events: [], watchId: st.id, created: true };
    if (i >= 0) this.#outbox[i] = { make: () => resp };
    else this.#queue.push(resp);
    this.#flush();
  }

  #flush(): void {
    while (this.#outbox.length > 0 && 'make' in this.#outbox[0]!) {
      const e = this.#outbox.shift() as { make: () => WatchResponse };
      this.#queue.push(e.make());
    }
  }

  cancel(watchId: number): void {
    if (this.#held.has(watchId)) {
      // Ended by compaction: the id is released now, and the server's copy too.
      const serverId = this.#held.get(watchId);
      this.#held.delete(watchId);
      this.#ids.delete(watchId);
      if (serverId !== undefined) this.#send({ cancel_request: { watch_id: String(serverId) } });
      this.#emit(() => ({ header: { revision: this.#lastRevision }, events: [], canceled: true, watchId }));
      return;
    }
    const st = this.#watches.get(watchId);
    if (st === undefined) return;
    if (this.#single) {
      this.close();
      return;
    }
    this.#forget(st);
    this.#ids.delete(watchId);
    if (st.serverId !== undefined) this.#send({ cancel_request: { watch_id: String(st.serverId) } });
    // A create still waiting for `created` is canceled when that answer arrives (#onCreated).
    this.#announce(st, this.#lastRevision);
    this.#emit(() => ({ header: { revision: this.#lastRevision }, events: [], canceled: true, watchId }));
  }

  requestProgress(): void {
    if (this.#closed) return;
    this.#progressPending = true;
    if (this.#ws?.readyState === WebSocket.OPEN) this.#send({ progress_request: {} });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const st of [...this.#watches.values()]) this.#forget(st);
    this.#outbox = [];
    this.#queue.clear();
    this.#shutdownSocket();
    this.#onClose(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return {
      next: () => this.#queue.next(),
      return: (): Promise<IteratorResult<WatchResponse>> => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  // ---- connection ----------------------------------------------------------------------------

  #ensureConnected(): void {
    if (this.#closed || this.#connecting || this.#ws !== undefined) return;
    this.#connecting = true;
    // A connection that died before any valid answer is not retried at once (no tight loop).
    const pause = this.#downSince === undefined ? 0 : 50;
    this.#downSince ??= Date.now();
    void this.#connectLoop(pause);
  }

  async #connectLoop(pause: number): Promise<void> {
    let backoff = 50;
    try {
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      while (!this.#closed) {
        if (Date.now() - (this.#downSince ?? Date.now()) >= this.#opts.reconnectTimeoutMs) {
          const last = this.#lastError;
          this.#fail(
            new ClientError(
              last?.code === 'ERR_BAD_RESPONSE' ? 'ERR_BAD_RESPONSE' : 'ERR_UNAVAILABLE',
              `boltkv: no endpoint served the watch stream within ${this.#opts.reconnectTimeoutMs} ms: ${last?.message ?? ''}`,
              { cause: last },
            ),
          );
          return;
        }
        for (const ep of this.#pool.order()) {
          if (this.#closed) return;
          const ws = await this.#open(ep);
          if (this.#closed) {
            ws?.terminate();
            return;
          }
          if (ws !== undefined) {
            this.#attach(ws, ep);
            return;
          }
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 1000);
      }
    } finally {
      this.#connecting = false;
    }
  }

  /** One connection attempt; undefined when it failed (the endpoint is marked failed). */
  #open(ep: Endpoint): Promise<WebSocket | undefined> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${ep.wsUrl}/v3/watch`, {
        handshakeTimeout: this.#opts.connectTimeoutMs,
        maxPayload: this.#opts.maxMessageBytes,
      });
      const fail = (e: unknown): void => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        this.#pool.failed(ep);
        this.#lastError = new ClientError(
          'ERR_UNAVAILABLE',
          `boltkv: ${ep.url}/v3/watch: ${e instanceof Error ? e.message : String(e)}`,
          { endpoint: ep.url, cause: e },
        );
        resolve(undefined);
      };
      ws.once('open', () => {
        ws.removeAllListeners();
        resolve(ws);
      });
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) =>
        fail(new Error(`HTTP ${res.statusCode ?? 0} instead of a WebSocket`)),
      );
    });
  }

  #attach(ws: WebSocket, ep: Endpoint): void {
    this.#ws = ws;
    this.#healthy = false;
    if (this.#queue.paused) ws.pause();
    let alive = true;
    ws.on('pong', () => {
      alive = true;
    });
    if (this.#opts.pingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => {
        if (!alive) {
          this.#lost(
            ws,
            ep,
            new ClientError('ERR_TIMEOUT', `boltkv: ${ep.url} stopped answering pings on the watch stream`, {
              endpoint: ep.url,
            }),
          );
          return;
        }
        alive = false;
        ws.ping();
      }, this.#opts.pingIntervalMs);
      this.#pingTimer.unref();
    }
    ws.on('message', (data, isBinary) => {
      if (this.#ws !== ws) return;
      try {
        this.#onMessage(isBinary ? Buffer.from(data as Buffer).toString('utf8') : String(data), ep);
      } catch (e) {
        // Garbage, or the member refusing the stream (a stream error, e.g. a learner): try another.
        const err =
          e instanceof ClientError
            ? e
            : e instanceof BoltkvError
              ? new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url} ended the watch stream: ${e.message}`, {
                  endpoint: ep.url,
                  cause: e,
                })
              : new ClientError(
                  'ERR_BAD_RESPONSE',
                  `boltkv: ${ep.url} sent a watch message that is not etcd's: ${String(e)}`,
                  { endpoint: ep.url, cause: e },
                );
        this.#lost(ws, ep, err);
      }
    });
    ws.on('error', (e) =>
      this.#lost(
        ws,
        ep,
        new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url}/v3/watch: ${e.message}`, { endpoint: ep.url, cause: e }),
      ),
    );
    ws.on('close', (code) =>
      this.#lost(
        ws,
        ep,
        new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url} closed the watch stream (${code})`, { endpoint: ep.url }),
      ),
    );
    // Every live watch starts again where it stopped, in id order (created answers follow it).
    for (const st of [...this.#watches.values()].sort((a, b) => a.id - b.id)) this.#sendCreate(st);
    if (this.#progressPending) this.#send({ progress_request: {} });
  }

  /** The connection broke: forget its server ids and move to another endpoint. */
  #lost(ws: WebSocket, ep: Endpoint, err: ClientError): void {
    if (this.#ws !== ws) return;
    this.#lastError = err;
    this.#pool.failed(ep);
    this.#shutdownSocket();
    if (this.#closed) return;
    if (this.#watches.size > 0 || this.#progressPending) this.#ensureConnected();
  }

  #shutdownSocket(): void {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    this.#byServer.clear();
    this.#awaitingCreated = [];
    for (const st of this.#watches.values()) st.serverId = undefined;
    for (const id of this.#held.keys()) this.#held.set(id, undefined);
    if (ws !== undefined) {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
    }
  }

  #fail(err: ClientError): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const st of [...this.#watches.values()]) this.#forget(st);
    this.#shutdownSocket();
    this.#queue.end(err);
    this.#onClose(this);
  }

  #send(msg: unknown): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  #sendCreate(st: WatchState): void {
    resumePoint(st);
    this.#awaitingCreated.push(st);
    this.#send(encodeWatchCreate(st.req, st.nextRev));
  }

  #forget(st: WatchState): void {
    this.#watches.delete(st.id);
    if (st.serverId !== undefined) this.#byServer.delete(st.serverId);
    st.detachSignal?.();
    st.detachSignal = undefined;
  }

  /** Standalone mode: the server ended the one watch; deliver what is queued, then end. */
  #endSingle(): void {
    this.#closed = true;
    this.#shutdownSocket();
    this.#queue.end();
    this.#onClose(this);
  }

  // ---- answers -------------------------------------------------------------------------------

  #onMessage(text: string, ep: Endpoint): void {
    // A stream error (e.g. a learner refusing watches) throws: another member may serve the stream.
    const { watchId, created, response } = decodeWatchMessage(text);
    if (!this.#healthy) {
      // Only a valid answer proves the endpoint serves watches.
      this.#healthy = true;
      this.#downSince = undefined;
      this.#pool.succeeded(ep);
    }
    if (response.header.revision > this.#lastRevision) this.#lastRevision = response.header.revision;
    if (created) {
      this.#onCreated(watchId, response);
      return;
    }
    if (watchId === -1 && response.events.length === 0 && response.canceled !== true) {
      this.#progressPending = false;
      if (this.#single) {
        if (this.#watches.size > 0) this.#queue.push({ header: response.header, events: [] });
      } else {
        this.#queue.push({ header: response.header, events: [], watchId: -1 });
      }
      return;
    }
    const st = this.#byServer.get(watchId);
    if (st === undefined) return;
    if (response.canceled === true) {
      this.#forget(st);
      const out: WatchResponse = { ...response, events: [] };
      if (this.#single) {
        this.#queue.push(out);
        this.#endSingle();
        return;
      }
      out.watchId = st.id;
      // etcd's server keeps the id of a watch ended by compaction until canceled; clientv3 frees it.
      if (this.#rpc && response.compactRevision !== undefined) this.#held.set(st.id, st.serverId);
      else this.#ids.delete(st.id);
      this.#queue.push(out);
      return;
    }
    const events = undelivered(st, response);
    if (events === undefined) return;
    const out: WatchResponse = { header: response.header, events };
    if (!this.#single) out.watchId = st.id;
    if (response.fragment === true) out.fragment = true;
    this.#queue.push(out);
  }

  #onCreated(serverId: number, response: WatchResponse): void {
    const st = this.#awaitingCreated.shift();
    if (st === undefined) return;
    if (!this.#watches.has(st.id)) {
      // Canceled by the caller before the server knew it: cancel it there too.
      if (response.canceled !== true) this.#send({ cancel_request: { watch_id: String(serverId) } });
      return;
    }
    if (response.canceled === true) {
      this.#forget(st);
      const out: WatchResponse = { header: response.header, events: [], canceled: true };
      if (response.cancelReason !== undefined) out.cancelReason = response.cancelReason;
      if (response.compactRevision !== undefined) out.compactRevision = response.compactRevision;
      if (!this.#single) {
        this.#ids.delete(st.id);
        out.watchId = st.id;
        if (this.#rpc) out.created = true;
      }
      st.announced = true;
      const i = this.#outbox.findIndex((e) => 'st' in e && e.st === st);
      if (i >= 0) this.#outbox[i] = { make: () => out };
      else this.#queue.push(out);
      this.#flush();
      if (this.#single) this.#endSingle();
      return;
    }
    st.serverId = serverId;
    this.#byServer.set(serverId, st);
    this.#announce(st, response.header.revision);
    if (st.nextRev === 0) st.nextRev = response.header.revision + 1;
  }
}

/** A standalone watch: one watch on its own stream, iteration ends when it is canceled. */
export class RemoteWatcher implements Watcher {
  readonly #stream: RemoteWatchStream;

  constructor(stream: RemoteWatchStream, req: WatchRequest) {
    this.#stream = stream;
    stream.create(req);
  }

  get canceled(): boolean {
    return this.#stream.closed;
  }

  cancel(): void {
    this.#stream.close();
  }

  requestProgress(): void {
    this.#stream.requestProgress();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return this.#stream[Symbol.asyncIterator]();
  }
}
