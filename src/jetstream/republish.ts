// A stream's `republish { src, dest, headers_only }` and `subject_transform { src, dest }` (nats-server
// 2.10): a stored message whose subject matches `src` is published again on the transformed `dest`, with
// the message's own headers then Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Time-Stamp and
// Nats-Last-Sequence (the subject's previous sequence, 0 for none); `headers_only` sends no payload and adds
// Nats-Msg-Size. The subject transform rewrites a captured message's subject before it is stored.
import { SubjectTransform } from "../accounts/subject-transform.ts";
import { subjectMatches } from "../subjects/subject.ts";
import { apiError } from "./errors.ts";
import { rfc3339 } from "./wire.ts";

export interface RepublishConfig {
  src: string;
  dest: string;
  headers_only?: boolean;
}

export interface StreamSubjectTransformConfig {
  src: string;
  dest: string;
}

type Json = Record<string, unknown>;

function str(r: Json, key: string): string {
  const v = r[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw apiError("InvalidJSON");
  return v;
}

/** Parses and checks `republish` as nats-server's checkStreamCfg: the destination may not feed the stream. */
export function parseRepublish(raw: unknown, subjects: readonly string[], collide: (a: string, b: string) => boolean): RepublishConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw apiError("InvalidJSON");
  const r = raw as Json;
  const src = str(r, "src") || ">";
  const dest = str(r, "dest");
  if (subjects.some((s) => collide(dest, s))) throw apiError("StreamInvalidConfig", { err: "stream configuration for republish destination forms a cycle" });
  try {
    SubjectTransform.compile(src, dest);
  } catch {
    throw apiError("StreamInvalidConfig", { err: `stream configuration for republish with transform from '${src}' to '${dest}' not valid` });
  }
  if (r.headers_only !== undefined && r.headers_only !== null && typeof r.headers_only !== "boolean") throw apiError("InvalidJSON");
  return { src, dest, ...(r.headers_only === true ? { headers_only: true } : {}) };
}

export function parseSubjectTransform(raw: unknown): StreamSubjectTransformConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw apiError("InvalidJSON");
  const r = raw as Json;
  const src = str(r, "src") || ">";
  const dest = str(r, "dest");
  try {
    SubjectTransform.compile(src, dest);
  } catch (error) {
    throw apiError("StreamCreate", { err: `stream subject transform from '${src}' to '${dest}': ${(error as Error).message}` });
  }
  return { src, dest };
}

/** A compiled transform that leaves subjects outside its source as they are. */
export class SubjectRewrite {
  private readonly transform: SubjectTransform;

  constructor(readonly src: string, dest: string) {
    this.transform = SubjectTransform.compile(src, dest);
  }

  /** The destination for `subject`, or null when it does not match the source. */
  apply(subject: string): string | null {
    if (!subjectMatches(this.src, subject)) return null;
    return this.transform.transform(subject);
  }
}

/** The republished message's headers (nats-server's order: the message's own, then the stream's). */
export function republishHeaders(
  stream: string, subject: string, seq: number, ts: number, lastSeq: number, own: Buffer | null, headersOnly: boolean, size: number,
): Buffer {
  let block = own === null || own.length === 0 ? "NATS/1.0\r\n" : own.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
  block += `Nats-Stream: ${stream}\r\nNats-Subject: ${subject}\r\nNats-Sequence: ${seq}\r\nNats-Time-Stamp: ${rfc3339(ts)}\r\nNats-Last-Sequence: ${lastSeq}\r\n`;
  if (headersOnly) block += `Nats-Msg-Size: ${size}\r\n`;
  return Buffer.from(`${block}\r\n`, "latin1");
}
