import type { Message, NodeId } from './types.ts';

/** One ReadIndex request waiting for a heartbeat quorum to confirm the leader is still the leader. */
export interface ReadIndexStatus {
  /** The leader's commit index when the request arrived: the read must see at least this much. */
  index: number;
  req: Message;
  acks: Set<NodeId>;
}

function ctxKey(ctx: Uint8Array | undefined): string {
  return ctx ? Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex') : '';
}

/**
 * Pending ReadIndex requests on the leader (safe mode). Each request's context rides on a round of
 * heartbeats; once a majority of voters echo it, this and every earlier request are confirmed,
 * because heartbeats are answered in order of the leader's term.
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private readonly queue: string[] = [];

  /** Registers a request; a context already pending is ignored (the first registration wins). */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Set() });
    this.queue.push(key);
  }

  /** Records that `id` echoed `ctx`; returns who has acknowledged it so far. */
  recvAck(id: NodeId, ctx: Uint8Array | undefined): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns the confirmed request and every request queued before it. */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const keys = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.pending.get(k);
      if (rs) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request, if any. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.req.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
