/**
 * One etcd Watch stream over the gateway's WebSocket (`ws://…/v3/watch`): requests go out one per
 * message whenever the test sends them, and every result is kept, decoded to boltkv's shape
 * (camelCase, int64 as numbers, bytes as Uint8Array).
 */
import WebSocket from 'ws';
import { fromWire, type Json, toWire, type Wire } from '../../support/etcd.ts';

export class EtcdWatchStream {
  readonly results: { [k: string]: Wire }[] = [];
  /** Error messages etcd sent while the stream was open (a test asserts there are none). */
  readonly errors: string[] = [];
  readonly #ws: WebSocket;
  #closing = false;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('error', (err) => {
      if (!this.#closing) this.errors.push(String(err));
    });
    ws.on('message', (data) => {
      // Closing the socket ends etcd's gRPC stream, which it reports as one last error: not ours.
      if (this.#closing) return;
      const msg = JSON.parse(String(data)) as { result?: Json; error?: Json };
      if (msg.result === undefined) this.errors.push(JSON.stringify(msg));
      else this.results.push(fromWire(msg.result) as { [k: string]: Wire });
    });
  }

  static open(url: string): Promise<EtcdWatchStream> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v3/watch`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new EtcdWatchStream(ws)));
      ws.once('error', reject);
    });
  }

  /** `{ createRequest }`, `{ cancelRequest: { watchId } }` or `{ progressRequest: {} }`, boltkv-shaped. */
  send(req: unknown): void {
    this.#ws.send(JSON.stringify(toWire(req)));
  }

  close(): void {
    this.#closing = true;
    this.#ws.close();
  }
}
