/**
 * `serve()`: etcd 3.4's HTTP/JSON gateway in front of a boltkv store. Paths, methods, JSON and
 * error bodies are etcd's (see docs and src/gateway); watch and lease keepalive stream over chunked
 * HTTP and over WebSocket on the same paths. Every input is bounded: header size, body size (enough
 * for etcd's largest accepted message, the rest never buffered), the time between body bytes, and
 * the bytes queued for a slow watch client. Binds loopback unless told otherwise.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { decodeMessage, encodeMessage } from '../gateway/codec.ts';
import { errorBody, etcdStatusOf, httpStatusFromGrpc, type EtcdStatus } from '../gateway/errors.ts';
import { GRPC_OVERHEAD_BYTES } from '../gateway/proto-size.ts';
import { decodeRequestStream, encodeStreamResult } from '../gateway/stream.ts';
import { SERVER_VERSION } from '../api/kv-store.ts';
import { EtcdService, grpcTooLarge } from './etcd-service.ts';
import { readBody } from './http-body.ts';
import { SnapshotChunker, type SnapshotImage, type SnapshotMessage } from './snapshot-chunker.ts';
import { createLogger, isLogLevel, type Logger, type LogLevel, ServerOptionError } from './logger.ts';
import type { ServedKV } from './served-kv.ts';
import type { ClusterApi } from '../replication/index.ts';
import { type WatchSink, WatchSession } from './watch-session.ts';

export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

export interface ServeOptions {
  /** The store to serve. `close()` closes it only with `closeKv: true`. */
  kv: ServedKV;
  /** Client URL(s) to listen on, etcd's `--listen-client-urls`. Default http://127.0.0.1:2379; port 0 picks one. */
  listen?: string | string[];
  /** Client URLs reported by member list (etcd's `--advertise-client-urls`); default: the listen URLs. */
  advertise?: string[];
  /** etcd's `--max-request-bytes`: larger writes get "request is too large". Default 1.5 MiB. */
  maxRequestBytes?: number;
  /** Member name (etcd's `--name`), default "default". */
  name?: string;
  /** Default "info". */
  logLevel?: LogLevel;
  /** Where log lines go (default: stderr as JSON lines at logLevel). */
  logger?: Logger;
  /** Longest pause allowed between bytes of a request body (and for its headers). Default 10 s. */
  bodyTimeoutMs?: number;
  /** Largest request head (request line + headers). Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Bytes queued to a watch client before the server stops reading its watches. Default 1 MiB. */
  watchBufferBytes?: number;
  /** Close the store when the server closes. */
  closeKv?: boolean;
  /**
   * Serving a replicated member: its cluster operations (etcd's Cluster service, MoveLeader), its
   * raft member id, the cluster token (one cluster id for every member) and its peer URLs.
   */
  cluster?: { api: ClusterApi; memberId: number; token: string; peerURLs: string[] };
}

export interface EtcdGatewayServer extends AsyncDisposable {
  /** The URLs actually listened on (port 0 resolved). */
  readonly urls: string[];
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** Stop accepting, end watches, let in-flight requests finish, then (with closeKv) close the store. */
  close(): Promise<void>;
  /** Live counts, for monitoring and tests. */
  stats(): { watchSessions: number; webSockets: number; inFlight: number };
}

const CORS = {
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': '*',
};

/** etcd 3.4 serves the same API under /v3beta. */
function canonicalPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return path.startsWith('/v3beta/') ? `/v3/${path.slice('/v3beta/'.length)}` : path;
}

function parseListen(u: string): { host: string; port: number; url: URL } {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new ServerOptionError(`boltkv serve: invalid listen URL ${JSON.stringify(u)}`);
  }
  if (url.protocol !== 'http:')
    throw new ServerOptionError(`boltkv serve: only http:// client URLs are supported, got ${u}`);
  const port = url.port === '' ? 80 : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host: host === 'localhost' ? '127.0.0.1' : host, port, url };
}

function idFrom(text: string): bigint {
  return createHash('sha256').update(text).digest().readBigUInt64BE(0);
}

export async function serve(options: ServeOptions): Promise<EtcdGatewayServer> {
  if (options === null || typeof options !== 'object' || options.kv === undefined || options.kv === null) {
    throw new ServerOptionError('boltkv serve: options.kv (a store from openStore) is required');
  }
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0)
    throw new ServerOptionError('boltkv serve: maxRequestBytes must be a positive integer');
  const logLevel = options.logLevel ?? 'info';
  if (!isLogLevel(logLevel))
    throw new ServerOptionError(`boltkv serve: logLevel must be debug, info, warn or error, got ${String(logLevel)}`);
  const log = options.logger ?? createLogger(logLevel);
  const name = options.name ?? 'default';
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 10_000;
  const watchBufferBytes = options.watchBufferBytes ?? 1024 * 1024;
  const listen = (Array.isArray(options.listen) ? options.listen : [options.listen ?? 'http://127.0.0.1:2379']).map(
    parseListen,
  );
  if (listen.length === 0) throw new ServerOptionError('boltkv serve: at least one listen URL is needed');
  for (const n of [bodyTimeoutMs, watchBufferBytes]) {
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new ServerOptionError('boltkv serve: timeouts and buffer sizes must be positive integers');
  }

  // Largest body read: twice etcd's largest accepted message as base64 JSON, so that bodies well
  // past the limit still get etcd's exact "larger than max (N vs. M)". Longer ones are cut short
  // and answered the same way with N estimated from the bytes read.
  const grpcMax = maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const bodyLimit = Math.ceil((grpcMax * 8) / 3) + 64 * 1024;

  const kv = options.kv;
  const clusterId = idFrom(`boltkv-cluster:${options.cluster?.token ?? name}`);
  const memberId = options.cluster !== undefined ? BigInt(options.cluster.memberId) : idFrom(`boltkv-member:${name}`);
  const servers: HttpServer[] = [];
  const urls: string[] = [];
  const sessions = new Set<WatchSession>();
  const sockets = new Set<WebSocket>();
  const inFlight = new Set<Promise<unknown>>();
  let closing = false;
  let service: EtcdService | undefined;

  const svc = (): EtcdService => {
    if (service === undefined) throw new Error('unreachable: service before listen');
    return service;
  };

  function sendError(res: ServerResponse, s: EtcdStatus): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const body = errorBody(s);
    res.writeHead(httpStatusFromGrpc(s.grpcCode), {
      ...CORS,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  function sendPlain(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, {
      ...CORS,
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(`${text}\n`);
  }

  function tooLargeStatus(received: number): EtcdStatus {
    // The body was not read to its end: report the size it would at least decode to.
    return etcdStatusOf(grpcTooLarge(Math.floor((received * 3) / 4), grpcMax));
  }

  async function body(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    const r = await readBody(req, bodyLimit, bodyTimeoutMs);
    if (r.ok) return r.body;
    if (r.reason === 'too-large') {
      res.setHeader('Connection', 'close');
      sendError(res, tooLargeStatus(r.received));
    } else if (r.reason === 'timeout') {
      res.setHeader('Connection', 'close');
      sendPlain(res, 408, 'Request Timeout');
    }
    req.socket.destroySoon?.();
    return undefined;
  }

  async function unary(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = svc().methods.get(path);
    if (method === undefined) return;
    const raw = await body(req, res);
    if (raw === undefined) return;
    try {
      const decoded = decodeMessage(method.request, raw);
      svc().checkSize(method.request, decoded);
      const resp = await method.call(decoded);
      const text = encodeMessage(method.response, resp);
      res.writeHead(200, {
        ...CORS,
        'Content-Type': 'application/json',
        'Grpc-Metadata-Content-Type': 'application/grpc',
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(text);
    } catch (e) {
      const s = etcdStatusOf(e);
      if (s.grpcCode === 2) log.error('request failed', { path, error: s.message });
      sendError(res, s);
    }
  }

  function httpSink(res: ServerResponse): WatchSink {
    return {
      send(resp) {
        if (res.destroyed || res.writableEnded) return true;
        if (!res.headersSent)
          res.writeHead(200, {
            ...CORS,
            'Content-Type': 'application/json',
            'Grpc-Metadata-Content-Type': 'application/grpc',
          });
        res.write(`${encodeStreamResult('WatchResponse', resp)}\n`);
        return res.writableLength < watchBufferBytes;
      },
      drained() {
        return new Promise((resolve) => {
          if (res.destroyed || res.writableLength < watchBufferBytes) return resolve();
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      },
    };
  }

  async function watchHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await body(req, res);
    if (raw === undefined) return;
    const { requests, error } = decodeRequestStream('WatchRequest', raw);
    if (requests.length === 0 && error !== undefined) {
      // The stream failed before it started: grpc-gateway answers Unknown with the decoder's text.
      sendError(res, { grpcCode: 2, message: error.message });
      return;
    }
    const session = new WatchSession(kv, svc(), httpSink(res));
    sessions.add(session);
    res.on('close', () => {
      session.close();
      sessions.delete(session);
    });
    for (const r of requests) void session.handle(r).catch((e: unknown) => failSession(session, e));
  }

  function failSession(session: WatchSession, e: unknown): void {
    log.error('watch stream failed', { error: e instanceof Error ? e.message : String(e) });
    session.close();
  }

  async function keepAliveHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await body(req, res);
    if (raw === undefined) return;
    const { requests, error } = decodeRequestStream('LeaseKeepAliveRequest', raw);
    if (requests.length === 0 && error !== undefined) {
      sendError(res, { grpcCode: 2, message: error.message });
      return;
    }
    try {
      for (const r of requests) {
        const resp = await svc().keepAlive(r);
        if (!res.headersSent)
          res.writeHead(200, {
            ...CORS,
            'Content-Type': 'application/json',
            'Grpc-Metadata-Content-Type': 'application/grpc',
          });
        res.write(`${encodeStreamResult('LeaseKeepAliveResponse', resp)}\n`);
      }
    } catch (e) {
      if (!res.headersSent) {
        sendError(res, etcdStatusOf(e));
        return;
      }
      res.write(`${JSON.stringify({ error: { ...etcdStatusOf(e) } })}\n`);
    }
    res.end();
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = canonicalPath(req.url);
    if (req.method === 'GET' && path === '/health') {
      const b = JSON.stringify({ health: closing ? 'false' : 'true' });
      res.writeHead(closing ? 503 : 200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(b);
      return;
    }
    if (req.method === 'GET' && path === '/version') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ etcdserver: SERVER_VERSION, etcdcluster: '3.4.0' }));
      return;
    }
    const known =
      svc().methods.has(path) ||
      path === '/v3/watch' ||
      path === '/v3/lease/keepalive' ||
      path === '/v3/maintenance/snapshot';
    if (!known) {
      req.resume();
      // grpc-gateway owns /v3/ and answers "Not Found"; outside it, Go's mux says its own text.
      sendPlain(res, 404, path.startsWith('/v3/') ? 'Not Found' : '404 page not found');
      return;
    }
    if (req.method === 'OPTIONS') {
      req.resume();
      res.writeHead(200, CORS);
      res.end();
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      sendPlain(res, 405, 'Method Not Allowed');
      return;
    }
    if (closing) {
      req.resume();
      res.setHeader('Connection', 'close');
      sendError(res, { grpcCode: 14, message: 'etcdserver: server stopped' });
      return;
    }
    let work: Promise<void>;
    if (path === '/v3/watch') work = watchHttp(req, res);
    else if (path === '/v3/lease/keepalive') work = keepAliveHttp(req, res);
    else if (path === '/v3/maintenance/snapshot') work = snapshot(req, res);
    else work = unary(req, res, path);
    const tracked = work
      .catch((e: unknown) => {
        log.error('request failed', { path, error: e instanceof Error ? e.message : String(e) });
        if (!res.headersSent) sendError(res, etcdStatusOf(e));
        else res.destroy();
      })
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }

  /**
   * etcd's Maintenance.Snapshot: the store's file image in 32 KiB blobs, each saying how many image
   * bytes remain after it, then one more blob holding the image's SHA-256. etcd 3.4 sends no header.
   */
  async function snapshot(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await body(req, res);
    if (raw === undefined) return;
    const open = (kv as unknown as Record<string, unknown>).snapshot;
    if (typeof open !== 'function') {
      // A store without a way to stream its file answers as a gRPC server without the method.
      sendError(res, { grpcCode: 12, message: 'unknown method Snapshot for service etcdserverpb.Maintenance' });
      return;
    }
    try {
      decodeMessage('SnapshotRequest', raw);
    } catch (e) {
      sendError(res, etcdStatusOf(e));
      return;
    }
    const abort = new AbortController();
    const stop = (): void => abort.abort();
    res.once('close', stop);
    let image: SnapshotImage;
    try {
      image = (open as (o: { signal: AbortSignal }) => SnapshotImage).call(kv, { signal: abort.signal });
    } catch (e) {
      res.off('close', stop);
      sendError(res, etcdStatusOf(e));
      return;
    }
    const send = (resp: SnapshotMessage): Promise<void> | undefined => {
      if (res.write(`${encodeStreamResult('SnapshotResponse', resp)}\n`)) return undefined;
      return new Promise((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    };
    try {
      res.writeHead(200, {
        ...CORS,
        'Content-Type': 'application/json',
        'Grpc-Metadata-Content-Type': 'application/grpc',
      });
      const chunks = new SnapshotChunker(image.size);
      for await (const piece of image as AsyncIterable<Buffer>) {
        for (const msg of chunks.push(piece)) {
          if (res.destroyed) return;
          await send(msg);
        }
      }
      for (const msg of chunks.end()) {
        if (res.destroyed) return;
        await send(msg);
      }
      res.end();
    } catch (e) {
      if (res.destroyed) return;
      res.write(`${JSON.stringify({ error: { ...etcdStatusOf(e) } })}\n`);
      res.end();
    } finally {
      res.off('close', stop);
      image.destroy();
    }
  }

  // ---- WebSocket: one request per message in, one {"result":…} per message out

  const wss = new WebSocketServer({ noServer: true, maxPayload: bodyLimit });

  function wsSink(ws: WebSocket): WatchSink {
    return {
      send(resp) {
        if (ws.readyState !== ws.OPEN) return true;
        ws.send(encodeStreamResult('WatchResponse', resp));
        return ws.bufferedAmount < watchBufferBytes;
      },
      drained() {
        return new Promise((resolve) => {
          const check = (): void => {
            if (ws.readyState !== ws.OPEN || ws.bufferedAmount < watchBufferBytes) resolve();
            else setTimeout(check, 20).unref();
          };
          check();
        });
      },
    };
  }

  function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
    return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  }

  function onWatchSocket(ws: WebSocket): void {
    sockets.add(ws);
    const session = new WatchSession(kv, svc(), wsSink(ws));
    sessions.add(session);
    let deaf = false;
    ws.on('message', (data) => {
      // etcd's proxy pours messages into one request stream: a message may hold several requests.
      // After invalid JSON that stream is over: later requests go unanswered, while responses of
      // the watches already made keep coming, as etcd does.
      if (deaf) return;
      const { requests, error } = decodeRequestStream('WatchRequest', toBuffer(data));
      for (const req of requests) {
        void session.handle(req).catch((e: unknown) => {
          failSession(session, e);
          ws.terminate();
        });
      }
      if (error !== undefined) deaf = true;
    });
    ws.on('close', () => {
      session.close();
      sessions.delete(session);
      sockets.delete(ws);
    });
    ws.on('error', () => ws.terminate());
  }

  function onKeepAliveSocket(ws: WebSocket): void {
    sockets.add(ws);
    let chain = Promise.resolve();
    ws.on('message', (data) => {
      const { requests, error } = decodeRequestStream('LeaseKeepAliveRequest', toBuffer(data));
      for (const req of requests) {
        chain = chain.then(async () => {
          try {
            const resp = await svc().keepAlive(req);
            if (ws.readyState === ws.OPEN) ws.send(encodeStreamResult('LeaseKeepAliveResponse', resp));
          } catch (e) {
            log.warn('keepalive failed', { error: etcdStatusOf(e).message });
            ws.terminate();
          }
        });
      }
      if (error !== undefined) chain = chain.then(() => ws.terminate());
    });
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => ws.terminate());
  }

  function onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const path = canonicalPath(req.url);
    if (closing || (path !== '/v3/watch' && path !== '/v3/lease/keepalive')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => (path === '/v3/watch' ? onWatchSocket(ws) : onKeepAliveSocket(ws)));
  }

  // ---- listen

  try {
    for (const l of listen) {
      const server = createServer(
        {
          maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
          headersTimeout: bodyTimeoutMs,
          requestTimeout: 0, // bodies are timed per chunk by readBody; watch responses are long-lived
          keepAliveTimeout: 5_000,
          // How often Node looks for connections whose headers are overdue (slowloris on headers).
          connectionsCheckingInterval: Math.min(1_000, bodyTimeoutMs),
        },
        handle,
      );
      server.on('upgrade', onUpgrade);
      server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
        if (!socket.writable) {
          socket.destroy();
          return;
        }
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        socket.end(
          `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        );
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      urls.push(`http://${l.url.hostname === 'localhost' ? 'localhost' : host}:${addr.port}`);
    }
  } catch (e) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw new ServerOptionError(`boltkv serve: cannot listen: ${(e as Error).message}`);
  }

  service = new EtcdService(
    kv,
    {
      clusterId,
      memberId,
      name,
      clientURLs: options.advertise ?? urls,
      peerURLs: options.cluster?.peerURLs ?? [],
      ...(options.cluster !== undefined ? { cluster: options.cluster.api } : {}),
    },
    maxRequestBytes,
  );
  log.info('serving client traffic', { name, urls, maxRequestBytes, memberId: memberId.toString(16) });

  let closed: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing = true;
    for (const s of servers) s.close();
    for (const session of sessions) session.close();
    sessions.clear();
    for (const ws of sockets) ws.close(1001, 'server stopping');
    wss.close();
    // Requests already being served finish (writes reach the disk) before the store closes.
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    for (const s of servers) s.closeAllConnections();
    for (const ws of sockets) ws.terminate();
    if (options.closeKv === true) await kv.close();
    log.info('stopped serving client traffic', { name, urls });
  }

  return {
    urls,
    memberId,
    clusterId,
    close: () => (closed ??= close()),
    stats: () => ({ watchSessions: sessions.size, webSockets: sockets.size, inFlight: inFlight.size }),
    [Symbol.asyncDispose]: () => (closed ??= close()),
  };
}
