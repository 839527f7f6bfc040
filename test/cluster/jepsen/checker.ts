// The checker: a pure function of the history and of what each replica holds after healing. Its rules:
//
// 1. Every acknowledged publish is in the stream exactly once, at the sequence its PubAck named (a
//    `duplicate: true` ack names the first copy's sequence).
// 2. No message is stored twice (the Nats-Msg-Id dedupe window holds across failovers), and nothing is
//    stored that no client published.
// 3. Every replica holds the same messages in the same order (each replica read through its own server,
//    up to the sequence before the final "fence" write), and reports a state that agrees (/jsz: at least
//    that far, no gap; the same bytes as another node at the same last sequence).
// 4. The consumer: every stored message was delivered by the end (at least once: an ack whose
//    confirmation timed out may or may not have been taken, so an unconfirmed ack proves nothing either
//    way); a message is not delivered
//    again after its ack was confirmed, except within ack_wait of the ack (a redelivery already on its way)
//    or after a fault that began once the ack was confirmed (an ack confirmed by a consumer leader is
//    replicated after the reply, as nats-server 2.9 does: a leader lost in between forgets it — counted,
//    and reported, but allowed). A server that confirms an ack once it is replicated (natter, nats-server
//    2.11+: `acksCommitted`) gets no such allowance: a confirmed ack survives any fault.
import type { HistoryEvent } from "./history.ts";

export interface StoredMessage {
  seq: number;
  id: string;
}

export interface ReplicaState {
  messages: number;
  bytes: number;
  first_seq: number;
  last_seq: number;
}

export interface ReplicaRead {
  server: string;
  /** The messages read through this server, in sequence order. */
  messages: StoredMessage[];
  /** The state this server reports for its own copy (/jsz). */
  state: ReplicaState | null;
}

export interface CheckInput {
  events: HistoryEvent[];
  replicas: ReplicaRead[];
  ackWaitMs: number;
  /** Whether the consumer received every sequence up to readUpTo (rule 4's "delivered by the end"). */
  consumerDrained: boolean;
  /** The sequences judged: 1..readUpTo (what came after, the fence write, may still be on its way to a follower). */
  readUpTo: number;
  /** The server confirms an ack once a majority has it: no redelivery after a confirmed ack is allowed for a fault. */
  acksCommitted?: boolean;
}

export interface CheckResult {
  ok: boolean;
  violations: string[];
  stats: {
    invoked: number;
    acked: number;
    indeterminate: number;
    stored: number;
    duplicateAcks: number;
    deliveries: number;
    redeliveries: number;
    redeliveredAfterAckAllowed: number;
  };
}

const LIMIT = 20; // violations listed per rule

export function check(input: CheckInput): CheckResult {
  const violations: string[] = [];
  const report = (rule: string, items: string[]) => {
    if (items.length === 0) return;
    const shown = items.slice(0, LIMIT).join("; ");
    violations.push(`${rule} (${items.length}): ${shown}${items.length > LIMIT ? "; …" : ""}`);
  };

  const invoked = new Set<string>();
  const acks = new Map<string, { seq: number; duplicate: boolean }[]>();
  let duplicateAcks = 0;
  for (const e of input.events) {
    if (e.type === "pub-invoke") invoked.add(e.id);
    if (e.type === "pub-ok") {
      acks.set(e.id, [...(acks.get(e.id) ?? []), { seq: e.seq, duplicate: e.duplicate }]);
      if (e.duplicate) duplicateAcks++;
    }
  }
  const gaveUp = input.events.filter((e) => e.type === "pub-gave-up").length;

  if (input.replicas.length === 0) {
    return { ok: false, violations: ["no replica could be read"], stats: emptyStats(invoked.size, acks.size, gaveUp) };
  }
  const reference = input.replicas[0]!;

  // Rule 3 first: a replica that differs makes every other finding ambiguous.
  const sameOrder: string[] = [];
  for (const r of input.replicas.slice(1)) {
    const a = reference.messages;
    const b = r.messages;
    if (a.length !== b.length) sameOrder.push(`${reference.server} holds ${a.length} messages, ${r.server} ${b.length}`);
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i]!.seq !== b[i]!.seq || a[i]!.id !== b[i]!.id) {
        sameOrder.push(`first difference at index ${i}: ${reference.server} has seq ${a[i]!.seq}=${a[i]!.id}, ${r.server} seq ${b[i]!.seq}=${b[i]!.id}`);
        break;
      }
    }
  }
  report("replicas differ", sameOrder);
  // Each node's own numbers: it holds at least what was read, with no gap (the stream deletes nothing),
  // and two nodes at the same last sequence hold the same bytes.
  const states: string[] = [];
  const withState = input.replicas.filter((r) => r.state !== null);
  if (withState.length < input.replicas.length) states.push(`no /jsz state from ${input.replicas.filter((r) => r.state === null).map((r) => r.server).join(", ")}`);
  for (const r of withState) {
    const st = r.state!;
    if (st.last_seq < input.readUpTo) states.push(`${r.server} reports last sequence ${st.last_seq}, below ${input.readUpTo}`);
    if (st.messages !== st.last_seq - st.first_seq + 1) states.push(`${r.server} reports ${st.messages} messages from ${st.first_seq} to ${st.last_seq}`);
    for (const o of withState) {
      if (o.server < r.server && o.state!.last_seq === st.last_seq && (o.state!.messages !== st.messages || o.state!.bytes !== st.bytes || o.state!.first_seq !== st.first_seq)) {
        states.push(`${o.server} ${JSON.stringify(o.state)} vs ${r.server} ${JSON.stringify(st)}`);
      }
    }
  }
  report("replica states differ", states);

  // Rules 1 and 2 on the reference copy (rule 3 says the others are the same).
  const storedAt = new Map<string, number[]>();
  for (const m of reference.messages) storedAt.set(m.id, [...(storedAt.get(m.id) ?? []), m.seq]);
  const lost: string[] = [];
  const wrongSeq: string[] = [];
  for (const [id, list] of acks) {
    if (list.every((a) => a.seq > input.readUpTo)) continue; // the fence: not judged
    const seqs = storedAt.get(id);
    if (seqs === undefined) {
      lost.push(`${id} (acked at seq ${list[0]!.seq})`);
      continue;
    }
    for (const a of list) if (a.seq !== seqs[0]) wrongSeq.push(`${id} acked at seq ${a.seq}${a.duplicate ? " (duplicate)" : ""}, stored at ${seqs.join(",")}`);
  }
  report("acknowledged publishes lost", lost);
  report("PubAck sequence differs from the stored one", wrongSeq);
  const twice: string[] = [];
  const phantom: string[] = [];
  for (const [id, seqs] of storedAt) {
    if (seqs.length > 1) twice.push(`${id} at seqs ${seqs.join(",")}`);
    if (!invoked.has(id)) phantom.push(`${id} at seq ${seqs[0]}`);
  }
  report("messages stored more than once", twice);
  report("messages stored that no client published", phantom);

  // Rule 4.
  const idAt = new Map<number, string>();
  for (const m of reference.messages) idAt.set(m.seq, m.id);
  const firstAck = new Map<number, number>();
  const faultStarts = input.events.filter((e) => e.type === "fault" && e.phase !== "end").map((e) => e.t);
  const lateRedelivery: string[] = [];
  const wrongContent: string[] = [];
  let deliveries = 0;
  let redeliveries = 0;
  let allowedAfterAck = 0;
  for (const e of input.events) {
    if (e.type === "ack-ok" && !firstAck.has(e.seq)) firstAck.set(e.seq, e.t);
    if (e.type !== "deliver") continue;
    deliveries++;
    if (e.deliveryCount > 1) redeliveries++;
    if (e.seq > input.readUpTo) continue;
    const stored = idAt.get(e.seq);
    if (stored !== e.id) wrongContent.push(`seq ${e.seq} delivered as ${e.id}, stored as ${stored ?? "nothing"}`);
    const ackedAt = firstAck.get(e.seq);
    if (ackedAt === undefined || e.t <= ackedAt + input.ackWaitMs) continue;
    const afterFault = faultStarts.some((f) => f >= ackedAt - 1000 && f <= e.t);
    if (afterFault && input.acksCommitted !== true) {
      allowedAfterAck++;
      continue;
    }
    lateRedelivery.push(`seq ${e.seq} acked at +${ackedAt} ms, delivered again at +${e.t} ms ${afterFault ? "after a fault (the ack was confirmed as committed)" : "with no fault in between"}`);
  }
  report("consumer delivered a message whose ack was confirmed, past ack_wait", lateRedelivery);
  report("consumer delivered other content than the stream holds", wrongContent);
  if (input.consumerDrained) {
    const received = new Set<number>();
    for (const e of input.events) if (e.type === "deliver") received.add(e.seq);
    const neverReceived = reference.messages.filter((m) => !received.has(m.seq)).map((m) => `seq ${m.seq}`);
    report("stored messages the consumer never received", neverReceived);
  } else {
    violations.push("the consumer did not reach the end of the stream before its deadline");
  }

  return {
    ok: violations.length === 0,
    violations,
    stats: {
      invoked: invoked.size,
      acked: acks.size,
      indeterminate: gaveUp,
      stored: reference.messages.length,
      duplicateAcks,
      deliveries,
      redeliveries,
      redeliveredAfterAckAllowed: allowedAfterAck,
    },
  };
}

function emptyStats(invoked: number, acked: number, indeterminate: number): CheckResult["stats"] {
  return { invoked, acked, indeterminate, stored: 0, duplicateAcks: 0, deliveries: 0, redeliveries: 0, redeliveredAfterAckAllowed: 0 };
}
