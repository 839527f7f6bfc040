// Pull request accounting and consumer state as nats-server reports them: a request's max_bytes charged per
// message (subject + ack reply + headers + payload), no_wait requests held while max_ack_pending is reached,
// and a filtered consumer's cursor (delivered.stream_seq), ack floor and num_pending.
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { createInbox, type Msg } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { api, connectJs, dec, enc, startJs, until, type JsConn } from "./helpers.ts";

type Server = Awaited<ReturnType<typeof startJs>>;

async function withStream(subjects = ["q.>"], extra: Record<string, unknown> = {}): Promise<JsConn & { server: Server }> {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "Q", subjects, ...extra });
  return { ...c, server };
}

/** A raw pull request whose replies are collected in `got` until stop(). */
interface Pull {
  got: Msg[];
  /** Waits until `check(got)` holds (fails after `ms`). */
  wait(check: (got: Msg[]) => boolean, ms?: number): Promise<Msg[]>;
  stop(): void;
}

function pull(c: JsConn, consumer: string, body: unknown): Pull {
  const inbox = createInbox();
  const got: Msg[] = [];
  const sub = c.nc.subscribe(inbox, {
    callback: (_err, m) => {
      got.push(m);
    },
  });
  c.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.Q.${consumer}`, enc(JSON.stringify(body)), { reply: inbox });
  return {
    got,
    async wait(check, ms = 5_000) {
      await until(() => check(got), ms, `pull replies (${got.length} so far)`);
      return got;
    },
    stop: () => sub.unsubscribe(),
  };
}

const code = (m: Msg): number => m.headers?.code ?? 0;
const isMessage = (m: Msg): boolean => code(m) === 0 && m.reply !== undefined && m.reply.startsWith("$JS.ACK.");
/** What nats-server charges a delivered message against max_bytes: subject, ack reply, headers and payload. */
const charged = (m: Msg): number =>
  Buffer.byteLength(m.subject) + Buffer.byteLength(m.reply ?? "") + (m.headers ? Buffer.byteLength(m.headers.toString()) : 0) + m.data.length;

const statusAt = (n: number) => (g: Msg[]) => g.some((m) => code(m) >= n);
const messages = (n: number) => (g: Msg[]) => g.filter(isMessage).length >= n;

describe("pull request max_bytes", () => {
  test("batch 10, max_bytes 150: messages charged with their ack reply, then 409 Message Size Exceeds MaxBytes", async () => {
    const c = await withStream();
    for (let i = 1; i <= 10; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "w", ack_policy: AckPolicy.Explicit });
    const p = pull(c, "w", { batch: 10, max_bytes: 150, expires: 2_000_000_000 });
    const got = await p.wait(statusAt(400));
    p.stop();
    const msgs = got.filter(isMessage);
    // q.N (3) + $JS.ACK.Q.w.1.N.N.<19-digit ns>.<pending> (39) + mN (2) = 44 bytes each: 3 fit in 150.
    expect(msgs.map((m) => m.subject)).toEqual(["q.1", "q.2", "q.3"]);
    expect(msgs.map(charged)).toEqual([44, 44, 44]);
    const last = got.at(-1)!;
    expect(code(last)).toBe(409);
    expect(last.headers!.description).toBe("Message Size Exceeds MaxBytes");
    expect(last.headers!.get("Nats-Pending-Messages")).toBe("7");
    expect(last.headers!.get("Nats-Pending-Bytes")).toBe(String(150 - 3 * 44));
    // The message that did not fit is the next one delivered.
    const next = pull(c, "w", { batch: 1, expires: 2_000_000_000 });
    expect((await next.wait(messages(1))).filter(isMessage).map((m) => m.subject)).toEqual(["q.4"]);
    next.stop();
  });

  test("headers and a longer subject are charged too; a budget used up exactly ends the request", async () => {
    const c = await withStream();
    const h = (await import("@nats-io/nats-core")).headers();
    h.set("X-Tag", "abc");
    for (let i = 1; i <= 4; i++) await c.js.publish(`q.long.subject.${i}`, enc("payload"), { headers: h });
    await c.jsm.consumers.add("Q", { durable_name: "h", ack_policy: AckPolicy.Explicit });
    // Learn one message's charge from a first pull, then ask for exactly two of them.
    const first = pull(c, "h", { batch: 1, expires: 2_000_000_000 });
    const one = (await first.wait(messages(1))).filter(isMessage)[0]!;
    first.stop();
    const size = charged(one);
    expect(size).toBe("q.long.subject.1".length + "$JS.ACK.Q.h.1.1.1.".length + 19 + ".3".length + one.headers!.toString().length + "payload".length);
    const exact = pull(c, "h", { batch: 10, max_bytes: 2 * size, expires: 5_000_000_000 });
    await exact.wait(messages(2));
    // Still listening on the first request's inbox: the next request gets the 4th message, so the first one
    // had ended (a request still waiting would have taken it), and it ended without a 409 or 408.
    const after = pull(c, "h", { batch: 1, expires: 2_000_000_000 });
    expect((await after.wait(messages(1))).filter(isMessage).map((m) => m.subject)).toEqual(["q.long.subject.4"]);
    after.stop();
    exact.stop();
    expect(exact.got.map((m) => (isMessage(m) ? m.subject : code(m)))).toEqual(["q.long.subject.2", "q.long.subject.3"]);
  });
});

/** Acks every message delivered so far that was not acked yet (by its reply subject). */
async function ackAll(c: JsConn, got: Msg[], acked: Set<string>): Promise<void> {
  for (const m of got) {
    if (isMessage(m) && !acked.has(m.reply!)) {
      acked.add(m.reply!);
      c.nc.publish(m.reply!, enc("+ACK"));
    }
  }
  await c.nc.flush();
}

test("the official client's fetch with max_bytes gets what fits, then reports the 409", async () => {
  const c = await withStream();
  for (let i = 1; i <= 10; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
  await c.jsm.consumers.add("Q", { durable_name: "w", ack_policy: AckPolicy.Explicit });
  const cons = await c.js.consumers.get("Q", "w");
  const started = Date.now();
  const got: JsMsg[] = [];
  const ended = await (async () => {
    for await (const m of await cons.fetch({ max_bytes: 150, expires: 10_000 })) got.push(m);
  })().then(
    () => "done",
    (error: Error) => error.message,
  );
  expect(got.map((m) => m.seq)).toEqual([1, 2, 3]);
  expect(ended).toBe("message size exceeds maxbytes");
  expect(Date.now() - started).toBeLessThan(8_000); // ended by the 409, not by the expiry
});

describe("no_wait pull requests and max_ack_pending", () => {
  test("a no_wait request is held while max_ack_pending is reached and served as acks make room, then 408 at the end", async () => {
    const c = await withStream();
    for (let i = 1; i <= 30; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "m", ack_policy: AckPolicy.Explicit, max_ack_pending: 10 });
    const p = pull(c, "m", { batch: 40, no_wait: true });
    await p.wait(messages(10));
    // Stalled, not ended: the request is still waiting.
    let info = await c.jsm.consumers.info("Q", "m");
    expect(info).toMatchObject({ num_waiting: 1, num_ack_pending: 10, num_pending: 20 });
    expect(p.got.filter((m) => !isMessage(m))).toEqual([]);
    const acked = new Set<string>();
    await ackAll(c, p.got, acked);
    await p.wait(messages(20));
    await ackAll(c, p.got, acked);
    await p.wait(messages(30));
    // The stream is read to its end while 10 are unacknowledged: still stalled, still waiting.
    info = await c.jsm.consumers.info("Q", "m");
    expect(info).toMatchObject({ num_waiting: 1, num_ack_pending: 10, num_pending: 0 });
    await ackAll(c, p.got, acked);
    const got = await p.wait(statusAt(400));
    p.stop();
    expect(got.filter(isMessage).map((m) => dec(m.data))).toEqual(Array.from({ length: 30 }, (_, i) => `m${i + 1}`));
    const end = got.at(-1)!;
    expect([code(end), end.headers!.description]).toEqual([408, "Request Timeout"]);
    expect(end.headers!.get("Nats-Pending-Messages")).toBe("10");
    expect(got.filter((m) => !isMessage(m))).toHaveLength(1);
  });

  test("no_wait: 404 when nothing is there, 408 Requests Pending when waiting requests already want all there is", async () => {
    const c = await withStream();
    await c.jsm.consumers.add("Q", { durable_name: "r", ack_policy: AckPolicy.Explicit, max_ack_pending: 5 });
    const empty = pull(c, "r", { batch: 5, no_wait: true });
    const none = (await empty.wait(statusAt(400))).at(-1)!;
    empty.stop();
    expect([code(none), none.headers!.description]).toEqual([404, "No Messages"]);
    for (let i = 1; i <= 20; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    // A long request takes 5 and stalls wanting 95 more; 15 are left, fewer than it wants.
    const long = pull(c, "r", { batch: 100, expires: 10_000_000_000 });
    await long.wait(messages(5));
    const late = pull(c, "r", { batch: 1, no_wait: true });
    const answer = (await late.wait(statusAt(400))).at(-1)!;
    late.stop();
    long.stop();
    expect([code(answer), answer.headers!.description]).toEqual([408, "Requests Pending"]);
  });
});

/** Fetches up to `max` messages (waiting at most `expires` ms) and double-acks each. */
async function fetchAndAck(c: JsConn, consumer: string, max: number, expires = 1_000, ack = true): Promise<JsMsg[]> {
  const cons = await c.js.consumers.get("Q", consumer);
  const out: JsMsg[] = [];
  for await (const m of await cons.fetch({ max_messages: max, expires })) out.push(m);
  if (ack) for (const m of out) await m.ackAck();
  return out;
}

async function state(c: JsConn, consumer: string) {
  const i = await c.jsm.consumers.info("Q", consumer);
  return {
    delivered: { consumer_seq: i.delivered.consumer_seq, stream_seq: i.delivered.stream_seq },
    ack_floor: { consumer_seq: i.ack_floor.consumer_seq, stream_seq: i.ack_floor.stream_seq },
    num_ack_pending: i.num_ack_pending,
    num_pending: i.num_pending,
  };
}

const seqs = (d: number, s: number) => ({ consumer_seq: d, stream_seq: s });

describe("consumer state: cursor, ack floor, num_pending", () => {
  test("delivered.stream_seq follows the cursor past what the filter skips; ack floor and num_pending with it", async () => {
    const c = await withStream();
    // q.a at 1, 2, 4, 6, 8; q.b at 3, 5, 7, 9, 10.
    for (const s of ["a", "a", "b", "a", "b", "a", "b", "a", "b", "b"]) await c.js.publish(`q.${s}`, enc(s));
    await c.jsm.consumers.add("Q", { durable_name: "f", ack_policy: AckPolicy.Explicit, filter_subject: "q.a" });
    expect(await state(c, "f")).toEqual({ delivered: seqs(0, 0), ack_floor: seqs(0, 0), num_ack_pending: 0, num_pending: 5 });
    // A batch of exactly the five matches ends with the last of them: the cursor stops there.
    const five = await fetchAndAck(c, "f", 5, 2_000, false);
    expect(five.map((m) => m.seq)).toEqual([1, 2, 4, 6, 8]);
    expect(await state(c, "f")).toEqual({ delivered: seqs(5, 8), ack_floor: seqs(0, 0), num_ack_pending: 5, num_pending: 0 });
    // An ack above the floor leaves it; the ack just above it moves it to below the next pending message.
    await five[1]!.ackAck();
    expect((await state(c, "f")).ack_floor).toEqual(seqs(0, 0));
    await five[0]!.ackAck();
    expect((await state(c, "f")).ack_floor).toEqual(seqs(2, 3));
    await five[2]!.ackAck();
    expect((await state(c, "f")).ack_floor).toEqual(seqs(3, 5));
    // The next pending message further above than there are pending messages (natter looks through the list).
    await five[3]!.ackAck();
    expect((await state(c, "f")).ack_floor).toEqual(seqs(4, 7));
    await five[4]!.ackAck();
    expect(await state(c, "f")).toEqual({ delivered: seqs(5, 8), ack_floor: seqs(5, 8), num_ack_pending: 0, num_pending: 0 });
    // Messages that do not match, published later, are not looked at yet.
    await c.js.publish("q.b", enc("b")); // 11
    expect((await state(c, "f")).delivered).toEqual(seqs(5, 8));
    // A request finds nothing: the cursor has now passed over everything to the stream's end.
    expect(await fetchAndAck(c, "f", 3)).toHaveLength(0);
    expect((await state(c, "f")).delivered).toEqual(seqs(5, 11));
    // A request larger than what matches: after the match the cursor goes on to the end (13).
    await c.js.publish("q.a", enc("a")); // 12
    await c.js.publish("q.b", enc("b")); // 13
    expect((await state(c, "f")).num_pending).toBe(1);
    expect((await fetchAndAck(c, "f", 5)).map((m) => m.seq)).toEqual([12]);
    const s = await state(c, "f");
    expect(s.delivered).toEqual(seqs(6, 13));
    expect(s.num_pending).toBe(0);
  });

  test("a pending message deleted from the stream counts as acked; a redelivery keeps its first delivery sequence", async () => {
    const c = await withStream();
    for (const s of ["a", "b", "a", "a", "b", "a"]) await c.js.publish(`q.${s}`, enc(s)); // q.a at 1, 3, 4, 6
    await c.jsm.consumers.add("Q", { durable_name: "d", ack_policy: AckPolicy.Explicit, filter_subject: "q.a" });
    const four = await fetchAndAck(c, "d", 4, 2_000, false);
    expect(four.map((m) => m.seq)).toEqual([1, 3, 4, 6]);
    // Deleting the floor's next message moves the floor to just below the next pending one.
    await c.jsm.streams.deleteMessage("Q", 1);
    await until(async () => (await state(c, "d")).num_ack_pending === 3, 5_000, "delete seen by the consumer");
    expect(await state(c, "d")).toEqual({ delivered: seqs(4, 6), ack_floor: seqs(1, 2), num_ack_pending: 3, num_pending: 0 });
    // Deleting one above the floor leaves it.
    await c.jsm.streams.deleteMessage("Q", 4);
    await until(async () => (await state(c, "d")).num_ack_pending === 2, 5_000, "delete seen by the consumer");
    expect((await state(c, "d")).ack_floor).toEqual(seqs(1, 2));
    // 3 is redelivered (delivery 5); acking 6 first leaves the floor (3 still counts from its delivery 2).
    four[1]!.nak();
    const again = await fetchAndAck(c, "d", 1, 2_000, false);
    expect(again.map((m) => [m.seq, m.info.deliverySequence, m.info.deliveryCount])).toEqual([[3, 5, 2]]);
    await four[3]!.ackAck();
    expect(await state(c, "d")).toEqual({ delivered: seqs(5, 6), ack_floor: seqs(1, 2), num_ack_pending: 1, num_pending: 0 });
    await again[0]!.ackAck();
    expect(await state(c, "d")).toEqual({ delivered: seqs(5, 6), ack_floor: seqs(5, 6), num_ack_pending: 0, num_pending: 0 });
  });

  test("ack all puts the floor at the acked message", async () => {
    const c = await withStream();
    for (const s of ["a", "b", "a", "b", "a", "b"]) await c.js.publish(`q.${s}`, enc(s)); // q.a at 1, 3, 5
    await c.jsm.consumers.add("Q", { durable_name: "all", ack_policy: AckPolicy.All, filter_subject: "q.a" });
    const three = await fetchAndAck(c, "all", 3, 2_000, false);
    expect(three.map((m) => m.seq)).toEqual([1, 3, 5]);
    await three[1]!.ackAck();
    expect(await state(c, "all")).toEqual({ delivered: seqs(3, 5), ack_floor: seqs(2, 3), num_ack_pending: 1, num_pending: 0 });
    await three[0]!.ackAck(); // below the floor: nothing changes
    expect((await state(c, "all")).ack_floor).toEqual(seqs(2, 3));
    await three[2]!.ackAck();
    expect(await state(c, "all")).toEqual({ delivered: seqs(3, 5), ack_floor: seqs(3, 5), num_ack_pending: 0, num_pending: 0 });
  });

  test("a push consumer's cursor also passes over the skipped tail once it has delivered what matches", async () => {
    const c = await withStream();
    for (const s of ["a", "b", "a", "b", "b"]) await c.js.publish(`q.${s}`, enc(s)); // q.a at 1, 3
    const inbox = createInbox();
    const got: Msg[] = [];
    const sub = c.nc.subscribe(inbox, {
      callback: (_err, m) => {
        got.push(m);
      },
    });
    await c.jsm.consumers.add("Q", { durable_name: "p", ack_policy: AckPolicy.None, filter_subject: "q.a", deliver_subject: inbox });
    await until(() => got.length === 2, 5_000, "two deliveries");
    await until(async () => (await state(c, "p")).delivered.stream_seq === 5, 5_000, "the cursor at the stream's end");
    expect(await state(c, "p")).toEqual({ delivered: seqs(2, 5), ack_floor: seqs(2, 3), num_ack_pending: 0, num_pending: 0 });
    sub.unsubscribe();
  });

  test("a start sequence past the stream's end starts at the next message", async () => {
    const c = await withStream();
    for (let i = 1; i <= 3; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "s", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 100 });
    expect(await state(c, "s")).toEqual({ delivered: seqs(0, 3), ack_floor: seqs(0, 0), num_ack_pending: 0, num_pending: 0 });
    await c.js.publish("q.4", enc("m4"));
    expect((await fetchAndAck(c, "s", 1, 2_000)).map((m) => m.seq)).toEqual([4]);
  });

  test("a purge moves the cursor and the ack floor to where the stream now starts, settling pending messages", async () => {
    const c = await withStream();
    for (let i = 1; i <= 10; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "k", ack_policy: AckPolicy.Explicit });
    await c.jsm.consumers.add("Q", { durable_name: "all", ack_policy: AckPolicy.Explicit });
    for (const name of ["k", "all"]) expect(await fetchAndAck(c, name, 4, 2_000, false)).toHaveLength(4);
    // keep 3: the stream starts at 8.
    await c.jsm.streams.purge("Q", { keep: 3 });
    expect(await state(c, "k")).toEqual({ delivered: seqs(4, 7), ack_floor: seqs(4, 7), num_ack_pending: 0, num_pending: 3 });
    expect((await fetchAndAck(c, "k", 1, 2_000)).map((m) => m.seq)).toEqual([8]);
    // Everything: past the end.
    await c.jsm.streams.purge("Q");
    expect(await state(c, "all")).toEqual({ delivered: seqs(4, 10), ack_floor: seqs(4, 10), num_ack_pending: 0, num_pending: 0 });
    expect(await state(c, "k")).toEqual({ delivered: seqs(5, 10), ack_floor: seqs(5, 10), num_ack_pending: 0, num_pending: 0 });
    await c.js.publish("q.11", enc("m11"));
    expect((await fetchAndAck(c, "all", 1, 2_000)).map((m) => m.seq)).toEqual([11]);
  });

  test("last_per_subject: the cursor starts at the first of the last messages and follows those delivered", async () => {
    const c = await withStream();
    for (const s of ["a", "b", "a", "c", "a", "b", "b", "a", "c", "c"]) await c.js.publish(`q.${s}`, enc(s)); // last: b 7, a 8, c 10
    await c.jsm.consumers.add("Q", { durable_name: "l", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: "q.>" });
    expect(await state(c, "l")).toEqual({ delivered: seqs(0, 6), ack_floor: seqs(0, 0), num_ack_pending: 0, num_pending: 3 });
    expect((await fetchAndAck(c, "l", 2, 2_000)).map((m) => m.seq)).toEqual([7, 8]);
    expect(await state(c, "l")).toEqual({ delivered: seqs(2, 8), ack_floor: seqs(2, 8), num_ack_pending: 0, num_pending: 1 });
    expect((await fetchAndAck(c, "l", 5)).map((m) => m.seq)).toEqual([10]);
    expect(await state(c, "l")).toEqual({ delivered: seqs(3, 10), ack_floor: seqs(3, 10), num_ack_pending: 0, num_pending: 0 });
  });

  test("messages dropped at max_deliver count as redelivered and leave the ack floor", async () => {
    const c = await withStream();
    for (let i = 1; i <= 2; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "x", ack_policy: AckPolicy.Explicit, max_deliver: 1, ack_wait: 500_000_000 });
    expect(await fetchAndAck(c, "x", 2, 2_000, false)).toHaveLength(2);
    // nats-server drops them when it next looks for a message: keep a request coming.
    await until(async () => {
      await fetchAndAck(c, "x", 1);
      return (await state(c, "x")).num_ack_pending === 0;
    }, 10_000, "both dropped");
    const info = await c.jsm.consumers.info("Q", "x");
    expect(info).toMatchObject({ delivered: seqs(2, 2), ack_floor: seqs(0, 0), num_redelivered: 2, num_pending: 0 });
  });
});
