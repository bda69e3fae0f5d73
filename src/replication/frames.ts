/**
 * Peer wire format: each frame is a 4-byte big-endian length and a msgpack body. Bodies:
 *   { t: 'msg', m }        one raft message (raft's own self-describing encoding)
 *   { t: 'snap', m }       opens a snapshot stream: the snap message without its data
 *   { t: 'chunk', d }      the next piece of the leader's bolt file
 *   { t: 'end' }           the file is complete
 *   { t: 'ok' } / { t: 'err', e }   the receiver's verdict on a snapshot stream
 *   { t: 'members' } / { t: 'list', l }   a joining member asks for the member list (etcd's
 *                          GET /members on the peer port), to learn the id it was added with
 * Frames are bounded (MAX_FRAME) so a peer cannot make us buffer without limit.
 */
import { Packr } from 'msgpackr';
import { ReplicationError } from './errors.ts';
import type { MemberInfo } from './proposal.ts';

export const MAX_FRAME = 8 << 20;

export type Frame =
  | { t: 'msg'; m: Uint8Array }
  | { t: 'snap'; m: Uint8Array }
  | { t: 'chunk'; d: Uint8Array }
  | { t: 'end' }
  | { t: 'ok' }
  | { t: 'err'; e: string }
  | { t: 'members' }
  | { t: 'list'; l: MemberInfo[] };

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeFrame(f: Frame): Uint8Array {
  const body = packr.pack(f);
  if (body.length > MAX_FRAME)
    throw new ReplicationError('ERR_INVALID_ARGUMENT', `frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Splits a byte stream into frames; throws ERR_CORRUPT on an oversized or undecodable frame. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): Frame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_FRAME) throw new ReplicationError('ERR_CORRUPT', `peer frame of ${n} bytes exceeds ${MAX_FRAME}`);
      if (this.buf.length < 4 + n) break;
      const body = this.buf.subarray(4, 4 + n);
      this.buf = this.buf.subarray(4 + n);
      let f: unknown;
      try {
        f = packr.unpack(body);
      } catch (err) {
        throw new ReplicationError('ERR_CORRUPT', 'peer frame does not decode', { cause: err });
      }
      if (typeof f !== 'object' || f === null || typeof (f as { t?: unknown }).t !== 'string') {
        throw new ReplicationError('ERR_CORRUPT', 'peer frame has no type');
      }
      out.push(f as Frame);
    }
    return out;
  }
}
