// Consumers through @nats-io/jetstream against the real server process: pull (fetch, next, consume),
// acks and redelivery, policies, filters, ordered and push consumers, status messages, restart.
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { createInbox, type Msg } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { api, connectJs, dec, enc, startJs, until, type JsConn } from "./helpers.ts";

/**
 * Behaviour of nats-server 2.10 (what natter implements) that Debian's nats-server 2.9.10 lacks
 * (filter_subjects, action create/update, last_per_subject without a filter): natter only.
 */
const test210 = test.skipIf(serverKind === "nats-server" && !process.env.NATS_SERVER_210);

async function withStream(subjects = ["q.>"], extra: Record<string, unknown> = {}): Promise<JsConn & { server: Awaited<ReturnType<typeof startJs>> }> {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "Q", subjects, ...extra });
  return { ...c, server };
}

async function publishN(c: JsConn, n: number, subject = (i: number) => `q.${i}`): Promise<void> {
  for (let i = 1; i <= n; i++) await c.js.publish(subject(i), enc(`m${i}`));
}

async function collect(iter: AsyncIterable<JsMsg>, ack = true): Promise<JsMsg[]> {
  const out: JsMsg[] = [];
  for await (const m of iter) {
    out.push(m);
    if (ack) m.ack();
  }
  return out;
}

/** A raw MSG.NEXT: the status (or 0 for a message) of the first reply. */
async function nextRaw(c: JsConn, consumer: string, body: unknown): Promise<Msg[]> {
  const inbox = createInbox();
  const sub = c.nc.subscribe(inbox);
  const got: Msg[] = [];
  const done = (async () => {
    for await (const m of sub) {
      got.push(m);
      if (m.headers?.code && m.headers.code >= 400) break;
      if (!m.headers?.code) break;
    }
  })();
  c.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.Q.${consumer}`, enc(typeof body === "string" ? body : JSON.stringify(body)), { reply: inbox });
  await Promise.race([done, new Promise((r) => setTimeout(r, 5_000))]);
  sub.unsubscribe();
  return got;
}

describe("pull consumers", () => {
  test("fetch and ack; info counts delivered, ack floor, pending and lag", async () => {
    const c = await withStream();
    await publishN(c, 5);
    await c.jsm.consumers.add("Q", { durable_name: "w", ack_policy: AckPolicy.Explicit });
    const consumer = await c.js.consumers.get("Q", "w");
    const batch = await consumer.fetch({ max_messages: 3, expires: 2_000 });
    const got: JsMsg[] = [];
    for await (const m of batch) got.push(m);
    expect(got.map((m) => dec(m.data))).toEqual(["m1", "m2", "m3"]);
    expect(got.map((m) => m.subject)).toEqual(["q.1", "q.2", "q.3"]);
    expect(got.map((m) => m.info.pending)).toEqual([4, 3, 2]);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(got[0]!.info.deliveryCount).toBe(1);
    let info = await consumer.info();
    expect(info).toMatchObject({ num_ack_pending: 3, num_pending: 2, delivered: { consumer_seq: 3, stream_seq: 3 }, ack_floor: { consumer_seq: 0, stream_seq: 0 } });
    await got[0]!.ackAck();
    await got[2]!.ackAck();
    info = await consumer.info();
    expect(info).toMatchObject({ num_ack_pending: 1, ack_floor: { consumer_seq: 1, stream_seq: 1 } });
    await got[1]!.ackAck();
    info = await consumer.info();
    expect(info).toMatchObject({ num_ack_pending: 0, ack_floor: { consumer_seq: 3, stream_seq: 3 } });
  });

  test("next() waits for a message; an empty stream ends the fetch at its expiry", async () => {
    const c = await withStream();
    await c.jsm.consumers.add("Q", { durable_name: "n", ack_policy: AckPolicy.Explicit });
    const consumer = await c.js.consumers.get("Q", "n");
    const started = Date.now();
    expect(await consumer.next({ expires: 1_000 })).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const pending = consumer.next({ expires: 5_000 });
    await c.js.publish("q.late", enc("late"));
    const m = await pending;
    expect(m && dec(m.data)).toBe("late");
    m!.ack();
  });

  test("status messages: 404 no_wait, 408 on expiry, 409 past max_waiting, 409 consumer deleted", async () => {
    const c = await withStream();
    await c.jsm.consumers.add("Q", { durable_name: "s", ack_policy: AckPolicy.Explicit, max_waiting: 1 });
    let r = await nextRaw(c, "s", { batch: 1, no_wait: true });
    expect([r[0]!.headers!.code, r[0]!.headers!.description]).toEqual([404, "No Messages"]);
    r = await nextRaw(c, "s", { batch: 2, expires: 200_000_000 });
    expect([r[0]!.headers!.code, r[0]!.headers!.description]).toEqual([408, "Request Timeout"]);
    expect(r[0]!.headers!.get("Nats-Pending-Messages")).toBe("2");
    // One request waits; a second is over max_waiting.
    const waitingInbox = createInbox();
    const waitingSub = c.nc.subscribe(waitingInbox);
    c.nc.publish("$JS.API.CONSUMER.MSG.NEXT.Q.s", enc(JSON.stringify({ batch: 1, expires: 5_000_000_000 })), { reply: waitingInbox });
    await until(async () => (await c.jsm.consumers.info("Q", "s")).num_waiting === 1, 5_000, "a waiting request");
    r = await nextRaw(c, "s", { batch: 1, expires: 5_000_000_000 });
    expect([r[0]!.headers!.code, r[0]!.headers!.description]).toEqual([409, "Exceeded MaxWaiting"]);
    const deleted = (async () => {
      for await (const m of waitingSub) return m;
    })();
    await c.jsm.consumers.delete("Q", "s");
    const m = await deleted;
    expect([m!.headers!.code, m!.headers!.description]).toEqual([409, "Consumer Deleted"]);
  });

  test("no_wait delivers what there is, then ends with 408", async () => {
    const c = await withStream();
    await publishN(c, 2);
    await c.jsm.consumers.add("Q", { durable_name: "nw", ack_policy: AckPolicy.None });
    const inbox = createInbox();
    const sub = c.nc.subscribe(inbox);
    c.nc.publish("$JS.API.CONSUMER.MSG.NEXT.Q.nw", enc(JSON.stringify({ batch: 5, no_wait: true })), { reply: inbox });
    const got: Msg[] = [];
    for await (const m of sub) {
      got.push(m);
      if (m.headers?.code) break;
    }
    expect(got.map((m) => (m.headers?.code ? `${m.headers.code}` : dec(m.data)))).toEqual(["m1", "m2", "408"]);
  });

  test("-NAK redelivers (with delay), +TERM drops, ack_wait and max_deliver bound redelivery", async () => {
    const c = await withStream();
    await publishN(c, 2);
    await c.jsm.consumers.add("Q", { durable_name: "r", ack_policy: AckPolicy.Explicit, ack_wait: 300_000_000, max_deliver: 2 });
    const consumer = await c.js.consumers.get("Q", "r");
    const first = (await consumer.next({ expires: 2_000 }))!;
    expect(first.seq).toBe(1);
    first.nak();
    await c.nc.flush();
    // nats-server handles acks on another goroutine: seq 2 may come before the NAK'd seq 1 does.
    let again = (await consumer.next({ expires: 2_000 }))!;
    let second: JsMsg | null = null;
    if (again.seq === 2) {
      second = again;
      again = (await consumer.next({ expires: 2_000 }))!;
    }
    expect(again.seq).toBe(1);
    expect(again.info.deliveryCount).toBe(2);
    again.term();
    second ??= (await consumer.next({ expires: 2_000 }))!;
    expect(second.seq).toBe(2);
    // Not acked: redelivered after ack_wait, once (max_deliver 2), then no more.
    const redelivered = (await consumer.next({ expires: 3_000 }))!;
    expect(redelivered.seq).toBe(2);
    expect(redelivered.info.deliveryCount).toBe(2);
    expect(redelivered.info.redelivered).toBe(true);
    expect(await consumer.next({ expires: 1_000 })).toBeNull();
    const info = await consumer.info();
    expect(info.num_ack_pending).toBe(0);
    expect(info.delivered.stream_seq).toBe(2);
  });

  test("a NAK with a delay holds the message back", async () => {
    const c = await withStream();
    await publishN(c, 1);
    await c.jsm.consumers.add("Q", { durable_name: "d", ack_policy: AckPolicy.Explicit });
    const consumer = await c.js.consumers.get("Q", "d");
    const m = (await consumer.next({ expires: 2_000 }))!;
    const t0 = Date.now();
    m.nak(700);
    const back = (await consumer.next({ expires: 5_000 }))!;
    expect(back.seq).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    back.ack();
  });

  test("ack policy all acknowledges everything up to the message", async () => {
    const c = await withStream();
    await publishN(c, 4);
    await c.jsm.consumers.add("Q", { durable_name: "a", ack_policy: AckPolicy.All });
    const consumer = await c.js.consumers.get("Q", "a");
    const batch = await collect(await consumer.fetch({ max_messages: 4, expires: 2_000 }), false);
    expect(batch.length).toBe(4);
    await batch[2]!.ackAck();
    const info = await consumer.info();
    expect(info).toMatchObject({ num_ack_pending: 1, ack_floor: { stream_seq: 3 } });
  });

  test("max_ack_pending stops delivery until acks come", async () => {
    const c = await withStream();
    await publishN(c, 5);
    await c.jsm.consumers.add("Q", { durable_name: "m", ack_policy: AckPolicy.Explicit, max_ack_pending: 2 });
    const consumer = await c.js.consumers.get("Q", "m");
    const batch = await collect(await consumer.fetch({ max_messages: 5, expires: 1_000 }), false);
    expect(batch.map((m) => m.seq)).toEqual([1, 2]);
    batch[0]!.ack();
    const more = await collect(await consumer.fetch({ max_messages: 5, expires: 1_000 }), false);
    expect(more.map((m) => m.seq)).toEqual([3]);
  });

  test210("filter_subject and filter_subjects; num_pending counts only matching messages", async () => {
    const c = await withStream();
    for (const s of ["q.a", "q.b", "q.c", "q.a", "q.b"]) await c.js.publish(s, enc(s));
    await c.jsm.consumers.add("Q", { durable_name: "fa", ack_policy: AckPolicy.Explicit, filter_subject: "q.a" });
    await c.jsm.consumers.add("Q", { durable_name: "fab", ack_policy: AckPolicy.Explicit, filter_subjects: ["q.a", "q.c"] });
    expect((await c.jsm.consumers.info("Q", "fa")).num_pending).toBe(2);
    expect((await c.jsm.consumers.info("Q", "fab")).num_pending).toBe(3);
    const got = await collect(await (await c.js.consumers.get("Q", "fab")).fetch({ max_messages: 3, expires: 2_000 }));
    expect(got.map((m) => m.seq)).toEqual([1, 3, 4]);
    expect(got.map((m) => m.info.pending)).toEqual([2, 1, 0]);
    const bad = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q.x", { stream_name: "Q", config: { name: "x", filter_subject: "other.>" } });
    expect(bad.error).toEqual({ code: 400, err_code: 10093, description: "consumer filter subject is not a valid subset of the interest subjects" });
  });

  test210("deliver policies: last, new, by_start_sequence, by_start_time, last_per_subject", async () => {
    const c = await withStream();
    for (const s of ["q.a", "q.b", "q.a", "q.c", "q.b"]) await c.js.publish(s, enc(s));
    const first = async (cfg: Record<string, unknown>, n: number) => {
      const name = `c${Math.random().toString(36).slice(2, 8)}`;
      await c.jsm.consumers.add("Q", { durable_name: name, ack_policy: AckPolicy.None, ...cfg });
      const consumer = await c.js.consumers.get("Q", name);
      const got = await collect(await consumer.fetch({ max_messages: n, expires: 1_000 }), false);
      return got.map((m) => m.seq);
    };
    expect(await first({ deliver_policy: DeliverPolicy.Last }, 5)).toEqual([5]);
    expect(await first({ deliver_policy: DeliverPolicy.New }, 5)).toEqual([]);
    expect(await first({ deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 4 }, 5)).toEqual([4, 5]);
    expect(await first({ deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - 60_000).toISOString() }, 5)).toEqual([1, 2, 3, 4, 5]);
    expect(await first({ deliver_policy: DeliverPolicy.LastPerSubject }, 5)).toEqual([3, 4, 5]);
    expect(await first({ deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: "q.b" }, 5)).toEqual([5]);
  });

  test("consume() keeps pulling as messages arrive", async () => {
    const c = await withStream();
    await c.jsm.consumers.add("Q", { durable_name: "cons", ack_policy: AckPolicy.Explicit });
    const consumer = await c.js.consumers.get("Q", "cons");
    const messages = await consumer.consume({ max_messages: 10 });
    const seen: number[] = [];
    const done = (async () => {
      for await (const m of messages) {
        seen.push(m.seq);
        m.ack();
        if (seen.length === 50) break;
      }
    })();
    for (let i = 0; i < 50; i++) c.js.publish(`q.${i}`, enc(String(i)));
    await done;
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await until(async () => (await consumer.info()).num_ack_pending === 0, 5_000, "all acked");
  });

  test("ordered consumers (client side) read everything in order", async () => {
    const c = await withStream();
    await publishN(c, 20);
    const oc = await c.js.consumers.get("Q");
    const got = await collect(await oc.fetch({ max_messages: 20, expires: 2_000 }), false);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe("push consumers", () => {
  test("deliver_subject gets messages with their own subjects and ack subjects; acks work", async () => {
    const c = await withStream();
    await publishN(c, 3);
    const inbox = createInbox();
    const sub = c.nc.subscribe(inbox);
    await c.jsm.consumers.add("Q", { durable_name: "p", ack_policy: AckPolicy.Explicit, deliver_subject: inbox });
    const got: Msg[] = [];
    for await (const m of sub) {
      got.push(m);
      m.respond(enc("+ACK"));
      if (got.length === 3) break;
    }
    expect(got.map((m) => m.subject)).toEqual(["q.1", "q.2", "q.3"]);
    expect(got[0]!.reply).toMatch(/^\$JS\.ACK\.Q\.p\.1\.1\.1\.\d+\.2$/);
    await until(async () => (await c.jsm.consumers.info("Q", "p")).num_ack_pending === 0, 5_000, "acks");
  });

  test("a push consumer waits for interest, then delivers; idle heartbeats carry the last sequences", async () => {
    const c = await withStream();
    await publishN(c, 2);
    const inbox = createInbox();
    await c.jsm.consumers.add("Q", { durable_name: "hb", ack_policy: AckPolicy.None, deliver_subject: inbox, idle_heartbeat: 200_000_000, flow_control: true });
    await new Promise((r) => setTimeout(r, 100));
    expect((await c.jsm.consumers.info("Q", "hb")).delivered.stream_seq).toBe(0);
    const sub = c.nc.subscribe(inbox);
    const got: Msg[] = [];
    for await (const m of sub) {
      got.push(m);
      if (m.headers?.code === 100 && m.headers.description === "Idle Heartbeat") break;
    }
    expect(got.slice(0, 2).map((m) => dec(m.data))).toEqual(["m1", "m2"]);
    const hb = got[got.length - 1]!;
    expect(hb.headers!.get("Nats-Last-Consumer")).toBe("2");
    expect(hb.headers!.get("Nats-Last-Stream")).toBe("2");
  });

  test("ordered push consumer (as KV watch uses it) reads all and then live updates", async () => {
    const c = await withStream();
    await publishN(c, 3);
    const pc = await c.js.consumers.getPushConsumer("Q", { deliver_policy: DeliverPolicy.All } as never);
    const messages = await pc.consume();
    const seen: string[] = [];
    const done = (async () => {
      for await (const m of messages) {
        seen.push(dec(m.data));
        if (seen.length === 5) break;
      }
    })();
    await until(() => seen.length === 3, 5_000, "initial messages");
    await c.js.publish("q.4", enc("m4"));
    await c.js.publish("q.5", enc("m5"));
    await done;
    expect(seen).toEqual(["m1", "m2", "m3", "m4", "m5"]);
  });
});

describe("consumer lifecycle", () => {
  test210("create via new API and legacy durable API; names, list, delete; errors", async () => {
    const c = await withStream();
    const created = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q.nc", { stream_name: "Q", config: { name: "nc", ack_policy: "explicit" }, action: "create" });
    expect(created.type).toBe("io.nats.jetstream.api.v1.consumer_create_response");
    expect(created).toMatchObject({ stream_name: "Q", name: "nc", config: { name: "nc", ack_policy: "explicit", ack_wait: 30_000_000_000, max_ack_pending: 1000, max_waiting: 512, inactive_threshold: 5_000_000_000 } });
    const again = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q.nc", { stream_name: "Q", config: { name: "nc", ack_policy: "none" }, action: "create" });
    expect(again.error).toEqual({ code: 400, err_code: 10148, description: "consumer already exists" });
    const upd = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q.zz", { stream_name: "Q", config: { name: "zz" }, action: "update" });
    expect(upd.error).toEqual({ code: 400, err_code: 10149, description: "consumer does not exist" });
    const legacy = await api(c.nc, "$JS.API.CONSUMER.DURABLE.CREATE.Q.old", { stream_name: "Q", config: { durable_name: "old", ack_policy: "explicit" } });
    expect(legacy).toMatchObject({ name: "old", config: { durable_name: "old", name: "old" } });
    const mismatch = await api(c.nc, "$JS.API.CONSUMER.DURABLE.CREATE.Q.old", { stream_name: "Q", config: { durable_name: "other" } });
    expect(mismatch.error).toEqual({ code: 400, err_code: 10017, description: "consumer name in subject does not match durable name in request" });
    const change = await api(c.nc, "$JS.API.CONSUMER.DURABLE.CREATE.Q.old", { stream_name: "Q", config: { durable_name: "old", ack_policy: "all" } });
    expect(change.error).toEqual({ code: 500, err_code: 10012, description: "ack policy can not be updated" });
    const fc = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q.f", { stream_name: "Q", config: { name: "f", deliver_subject: "x.y", flow_control: true } });
    expect(fc.error).toEqual({ code: 400, err_code: 10108, description: "consumer with flow control also needs heartbeats" });
    const names: string[] = [];
    for await (const n of c.jsm.consumers.list("Q")) names.push(n.name);
    expect(names.sort()).toEqual(["nc", "old"]);
    expect(await c.jsm.consumers.delete("Q", "old")).toBe(true);
    const gone = await api(c.nc, "$JS.API.CONSUMER.INFO.Q.old");
    expect(gone.error).toEqual({ code: 404, err_code: 10014, description: "consumer not found" });
  });

  test("an ephemeral consumer goes away after its inactive threshold", async () => {
    const c = await withStream();
    const created = await api(c.nc, "$JS.API.CONSUMER.CREATE.Q", { stream_name: "Q", config: { ack_policy: "explicit", inactive_threshold: 300_000_000 } });
    const name = created.name as string;
    expect(name).toMatch(/^\w+$/);
    await until(async () => (await api(c.nc, `$JS.API.CONSUMER.INFO.Q.${name}`)).error?.err_code === 10014, 5_000, "ephemeral removal");
  });

  test("durable consumer state survives a restart", async () => {
    const c = await withStream();
    await publishN(c, 5);
    await c.jsm.consumers.add("Q", { durable_name: "keep", ack_policy: AckPolicy.Explicit });
    let consumer = await c.js.consumers.get("Q", "keep");
    const batch = await collect(await consumer.fetch({ max_messages: 3, expires: 2_000 }), false);
    await batch[0]!.ackAck();
    await batch[1]!.ackAck();
    await c.server.restart();
    const c2 = await connectJs(c.server);
    const info = await c2.jsm.consumers.info("Q", "keep");
    expect(info).toMatchObject({ delivered: { stream_seq: 3, consumer_seq: 3 }, ack_floor: { stream_seq: 2 }, num_ack_pending: 1, num_pending: 2 });
    consumer = await c2.js.consumers.get("Q", "keep");
    const next = (await consumer.next({ expires: 2_000 }))!;
    expect(next.seq).toBe(4);
  });
});
