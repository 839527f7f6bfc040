// A large RAFT payload goes as parts. Raft payloads have no size of their own (an entry holding a durable's
// state grows with its pending list: 1.4 MB with 60,000 unacknowledged messages) while a route refuses a
// frame past its limit and closes (route.ts): when that limit was max_payload + 256 KiB, such an append was
// refused, the route closed, reopened and was refused again every 250 ms, and every group on it stopped.
// So a payload over RAFT_PART_BYTES is sent as PART frames, each far inside any route's limit, and put back
// together on the other side.
//
// A sender queues all parts of one payload on one route in one call, so they arrive one after the other: a
// receiver keeps at most one payload in progress per sender, and drops it when the route closes or a part is
// out of place.

/** Payload bytes in one part (what a route frame always holds: its slack is 256 KiB). */
export const RAFT_PART_BYTES = 192 * 1024;
/** Parts of one payload at most (192 MiB): a larger one is not sent. */
export const RAFT_MAX_PARTS = 1024;
/** Bytes in front of a part's payload: u8 the whole payload's frame type, u16 part index, u16 part count. */
const PART_HEAD = 5;

/** The PART frames' bodies for a payload of `type`, or null when it is too large to send at all. */
export function splitIntoParts(type: number, payload: Uint8Array): Buffer[] | null {
  const count = Math.ceil(payload.length / RAFT_PART_BYTES);
  if (count > RAFT_MAX_PARTS) return null;
  const parts: Buffer[] = [];
  for (let index = 0; index < count; index++) {
    const bytes = payload.subarray(index * RAFT_PART_BYTES, Math.min(payload.length, (index + 1) * RAFT_PART_BYTES));
    const part = Buffer.allocUnsafe(PART_HEAD + bytes.length);
    part[0] = type;
    part.writeUInt16BE(index, 1);
    part.writeUInt16BE(count, 3);
    part.set(bytes, PART_HEAD);
    parts.push(part);
  }
  return parts;
}

interface InProgress {
  group: string;
  type: number;
  count: number;
  parts: Buffer[];
}

/** Puts parts back together, per sender. */
export class PartsAssembler {
  private readonly inProgress = new Map<string, InProgress>();

  /**
   * One PART frame's body from `from` (its bytes are only valid during the call: copied). Returns the whole
   * payload and its type once the last part is in, else null.
   */
  add(from: string, group: string, body: Uint8Array): { type: number; payload: Buffer } | null {
    if (body.length < PART_HEAD) return null;
    const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const type = view[0]!;
    const index = view.readUInt16BE(1);
    const count = view.readUInt16BE(3);
    let current = this.inProgress.get(from);
    if (index === 0) {
      current = { group, type, count, parts: [] };
      this.inProgress.set(from, current);
    }
    // A part of another payload than the one in progress (its start was lost with a route): drop both.
    if (current === undefined || current.group !== group || current.type !== type || current.count !== count || current.parts.length !== index || count > RAFT_MAX_PARTS) {
      this.inProgress.delete(from);
      return null;
    }
    current.parts.push(Buffer.from(view.subarray(PART_HEAD)));
    if (current.parts.length < count) return null;
    this.inProgress.delete(from);
    return { type, payload: Buffer.concat(current.parts) };
  }

  /** The sender's route closed: a payload in progress will not be completed. */
  forget(from: string): void {
    this.inProgress.delete(from);
  }
}
