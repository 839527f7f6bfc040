// Raft messages and log entries on the wire and on disk: msgpack maps with the field names of
// raft-types.ts. Decoding checks the shape, so a corrupt or foreign frame is an error here and never a
// half-valid object inside the node.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { EntryType, type LogEntry, type RaftMessage, type Snapshot } from "./raft-types.ts";

// One of each, reused: building an Encoder per message cost more than the encoding itself. (Both copy
// themselves if entered again while busy, so reuse is safe.)
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const encode = (value: unknown) => encoder.encode(value);
const decode = (bytes: Uint8Array) => decoder.decode(bytes);

export class RaftCodecError extends Error {}

export function encodeMessage(message: RaftMessage): Uint8Array {
  return encode(message);
}

export function decodeMessage(bytes: Uint8Array): RaftMessage {
  const m = asRecord(decode(bytes), "message");
  str(m, "from");
  num(m, "term");
  switch (m.type) {
    case "vote":
      num(m, "lastLogIndex");
      num(m, "lastLogTerm");
      bool(m, "preVote");
      bool(m, "transfer");
      break;
    case "voteResp":
      bool(m, "preVote");
      bool(m, "granted");
      break;
    case "append":
      num(m, "prevLogIndex");
      num(m, "prevLogTerm");
      num(m, "commit");
      num(m, "round");
      if (!Array.isArray(m.entries)) throw new RaftCodecError("append: entries is not an array");
      m.entries.forEach(checkEntry);
      break;
    case "appendResp":
      bool(m, "success");
      for (const k of ["matchIndex", "rejectedIndex", "conflictTerm", "conflictIndex", "round"]) num(m, k);
      break;
    case "snapshot":
      num(m, "round");
      checkSnapshot(m.snapshot);
      break;
    case "snapshotResp":
      num(m, "matchIndex");
      num(m, "round");
      break;
    case "timeoutNow":
      break;
    default:
      throw new RaftCodecError(`unknown message type ${String(m.type)}`);
  }
  return m as unknown as RaftMessage;
}

export function encodeEntry(entry: LogEntry): Uint8Array {
  return encode(entry);
}

export function decodeEntry(bytes: Uint8Array): LogEntry {
  const e = decode(bytes);
  checkEntry(e);
  return e as LogEntry;
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  return encode(snapshot);
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const s = decode(bytes);
  checkSnapshot(s);
  return s as Snapshot;
}

function checkEntry(value: unknown): void {
  const e = asRecord(value, "entry");
  num(e, "index");
  num(e, "term");
  if (e.type === EntryType.Command) bytes(e, "data");
  else if (e.type === EntryType.Config) strings(e, "peers");
  else if (e.type !== EntryType.Noop) throw new RaftCodecError(`entry: unknown type ${String(e.type)}`);
}

function checkSnapshot(value: unknown): void {
  const s = asRecord(value, "snapshot");
  num(s, "index");
  num(s, "term");
  strings(s, "peers");
  bytes(s, "data");
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RaftCodecError(`${what} is not a map`);
  return value as Record<string, unknown>;
}

function num(o: Record<string, unknown>, key: string): void {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new RaftCodecError(`${key} is not a count`);
}

function str(o: Record<string, unknown>, key: string): void {
  if (typeof o[key] !== "string") throw new RaftCodecError(`${key} is not a string`);
}

function bool(o: Record<string, unknown>, key: string): void {
  if (typeof o[key] !== "boolean") throw new RaftCodecError(`${key} is not a boolean`);
}

function bytes(o: Record<string, unknown>, key: string): void {
  if (!(o[key] instanceof Uint8Array)) throw new RaftCodecError(`${key} is not binary`);
}

function strings(o: Record<string, unknown>, key: string): void {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new RaftCodecError(`${key} is not a list of names`);
}
