/**
 * A TCP proxy in front of a member's peer port that a test cuts and heals: the member advertises
 * the proxy's port and listens behind it, so cutting the proxy partitions it from its peers' dials.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class PeerProxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  cut = false;
  constructor(
    readonly port: number,
    readonly target: number,
  ) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((inbound) => {
        if (this.cut) {
          inbound.destroy();
          return;
        }
        const outbound = connect({ host: '127.0.0.1', port: this.target });
        for (const s of [inbound, outbound]) {
          this.sockets.add(s);
          s.on('error', () => undefined);
          s.once('close', () => {
            this.sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
      this.server = server;
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Drops every open connection and refuses new ones until heal(). */
  partition(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.partition();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }
}
