// Replay and dead letters, the console's admin tools for a stream's messages. Both read messages through
// the JetStream API (STREAM.MSG.GET) and publish through an internal client in the stream's account, so a
// republished message reaches subscribers and streams exactly as a client's publish would.
//
// - Replay: the messages of a stream with sequences from..to (at most MAX_REPLAY), headers and payload
//   as stored, republished to a subject of the operator's choice.
// - Dead letters: a consumer with a dead_letter_subject gets a copy of each message that exhausted
//   max_deliver or was terminated, with Nats-Dead-Letter-* headers (src/jetstream/account.ts). Where a
//   stream captures that subject, its messages are the dead letters: listed with their reason, redriven
//   (republished to their original subject, without the Nats-Dead-Letter-* headers, then removed) or
//   discarded (removed).
import type { Server } from "../server.ts";
import { InternalClient } from "../internal-client.ts";
import { jsz } from "../jetstream/jsz.ts";
import { isValidPublishSubject, subjectMatches } from "../subjects/subject.ts";
import { ApiError, jsApiOk, validName } from "./jetstream.ts";

export const MAX_REPLAY = 10_000;
const MAX_LETTERS = 100;

interface Stored {
  subject: string;
  seq: number;
  hdrs?: string;
  data?: string;
  time: string;
}

/** The first message at or after `seq` (on `subject`, any when ">"), or null past the end. */
export async function nextMessage(server: Server, account: string, stream: string, seq: number, subject = ">"): Promise<Stored | null> {
  try {
    return (await jsApiOk(server, account, `$JS.API.STREAM.MSG.GET.${stream}`, { seq, next_by_subj: subject })).message as Stored;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

function publisher(server: Server, account: string): InternalClient {
  const a = server.accounts.get(account);
  if (a === undefined) throw new ApiError(404, `no account ${account}`);
  return new InternalClient(server, "console", a);
}

/** A stored message's time (RFC 3339, nanoseconds) in ms; the fraction cut to ms so Date.parse takes it. */
function timeMs(m: Stored): number {
  return Date.parse(m.time.replace(/(\.\d{3})\d*/, "$1"));
}

/**
 * The first message stored at or after `atMs` (and on `subject`, when given): a binary search over the
 * sequences (a stream's messages are in time order), O(log n) STREAM.MSG.GET requests.
 */
export async function messageAtTime(server: Server, account: string, stream: string, atMs: number, subject = ""): Promise<Stored | null> {
  const info = await jsApiOk(server, account, `$JS.API.STREAM.INFO.${stream}`, {});
  const state = info.state as { first_seq: number; last_seq: number; messages: number };
  if (state.messages === 0) return null;
  let lo = state.first_seq;
  let hi = state.last_seq + 1; // past the end: nothing that late
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = await nextMessage(server, account, stream, mid);
    if (m === null || timeMs(m) >= atMs) hi = mid;
    else lo = m.seq + 1;
  }
  return nextMessage(server, account, stream, lo, subject || ">");
}

export async function replay(server: Server, account: string, stream: string, from: number, to: number, subject: string): Promise<{ replayed: number; last_seq: number }> {
  if (!validName(stream)) throw new ApiError(400, "which stream?");
  if (!isValidPublishSubject(subject)) throw new ApiError(400, `${JSON.stringify(subject)} is not a subject to publish to`);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to < from) throw new ApiError(400, "a range of sequences: from ≥ 1, to ≥ from");
  const client = publisher(server, account);
  let replayed = 0;
  let last = 0;
  try {
    for (let seq = from; seq <= to && replayed < MAX_REPLAY;) {
      const m = await nextMessage(server, account, stream, seq);
      if (m === null || m.seq > to) break;
      client.publish(subject, Buffer.from(m.data ?? "", "base64"), null, m.hdrs ? Buffer.from(m.hdrs, "base64") : null);
      replayed++;
      last = m.seq;
      seq = m.seq + 1;
    }
  } finally {
    client.close();
  }
  return { replayed, last_seq: last };
}

/** "NATS/1.0\r\nK: V\r\n…" → [[K, V], …] */
function headerPairs(block: string): [string, string][] {
  return block.split("\r\n").slice(1).filter((l) => l.includes(":")).map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
  });
}

export interface DeadLetter {
  seq: number;
  time: string;
  subject: string;
  reason: string;
  term_reason?: string;
  deliveries: number;
  original_subject: string;
  original_seq: number;
  data: string;
}

export interface DeadLetterQueue {
  account: string;
  stream: string;
  consumer: string;
  dead_letter_subject: string;
  /** The stream that captures dead_letter_subject; null when none does (the letters then go nowhere). */
  dlq_stream: string | null;
  letters: DeadLetter[];
}

export async function deadLetters(server: Server): Promise<DeadLetterQueue[]> {
  const z = jsz(server, { accounts: false, streams: true, consumers: true, config: true, account: "" }) as {
    account_details?: { name: string; stream_detail?: { name: string; config?: { subjects?: string[] }; consumer_detail?: { name: string; config?: { dead_letter_subject?: string } }[] }[] }[];
  };
  const out: DeadLetterQueue[] = [];
  for (const a of z.account_details ?? []) {
    const streams = a.stream_detail ?? [];
    for (const s of streams) {
      for (const c of s.consumer_detail ?? []) {
        const dl = c.config?.dead_letter_subject;
        if (!dl) continue;
        const dlq = streams.find((x) => (x.config?.subjects ?? []).some((p) => subjectMatches(p, dl)));
        const q: DeadLetterQueue = { account: a.name, stream: s.name, consumer: c.name, dead_letter_subject: dl, dlq_stream: dlq?.name ?? null, letters: [] };
        for (let seq = 1; dlq && q.letters.length < MAX_LETTERS;) {
          const m = await nextMessage(server, a.name, dlq.name, seq, dl);
          if (m === null) break;
          seq = m.seq + 1;
          const h = new Map(headerPairs(m.hdrs ? Buffer.from(m.hdrs, "base64").toString("latin1") : ""));
          if (h.get("Nats-Dead-Letter-Consumer") !== c.name || h.get("Nats-Dead-Letter-Stream") !== s.name) continue;
          q.letters.push({
            seq: m.seq, time: m.time, subject: m.subject,
            reason: h.get("Nats-Dead-Letter-Reason") ?? "", term_reason: h.get("Nats-Dead-Letter-Term-Reason"),
            deliveries: Number(h.get("Nats-Dead-Letter-Deliveries") ?? 0),
            original_subject: h.get("Nats-Dead-Letter-Subject") ?? "", original_seq: Number(h.get("Nats-Dead-Letter-Sequence") ?? 0),
            data: m.data ?? "",
          });
        }
        out.push(q);
      }
    }
  }
  return out;
}

/** Redrive: the letter's payload (and its own headers, without Nats-Dead-Letter-*) to its original subject; then it is removed. */
export async function redrive(server: Server, account: string, dlqStream: string, seq: number): Promise<{ subject: string }> {
  if (!validName(dlqStream) || !Number.isInteger(seq) || seq < 1) throw new ApiError(400, "a dead-letter stream and a sequence");
  const m = (await jsApiOk(server, account, `$JS.API.STREAM.MSG.GET.${dlqStream}`, { seq })).message as Stored;
  const pairs = headerPairs(m.hdrs ? Buffer.from(m.hdrs, "base64").toString("latin1") : "");
  const original = pairs.find(([k]) => k === "Nats-Dead-Letter-Subject")?.[1];
  if (!original || !isValidPublishSubject(original)) throw new ApiError(400, `message ${seq} of ${dlqStream} is not a dead letter`);
  const kept = pairs.filter(([k]) => !k.startsWith("Nats-Dead-Letter-"));
  const headers = kept.length > 0 ? Buffer.from(`NATS/1.0\r\n${kept.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`, "latin1") : null;
  const client = publisher(server, account);
  try {
    client.publish(original, Buffer.from(m.data ?? "", "base64"), null, headers);
  } finally {
    client.close();
  }
  await discard(server, account, dlqStream, seq);
  return { subject: original };
}

export async function discard(server: Server, account: string, dlqStream: string, seq: number): Promise<void> {
  if (!validName(dlqStream) || !Number.isInteger(seq) || seq < 1) throw new ApiError(400, "a dead-letter stream and a sequence");
  await jsApiOk(server, account, `$JS.API.STREAM.MSG.DELETE.${dlqStream}`, { seq });
}
