// Stream and consumer configuration as nats-server answers it: what create refuses, what an update may
// change, what is echoed, store-specific answers, and consumer fields that must have their effect
// (rate_limit_bps, sample_freq, replay_policy original, deliver_group, first_seq, mirror_direct).
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { createInbox } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { consumerOpts } from "nats";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { api, connectJs, dec, enc, startJs, until, type JsConn } from "./helpers.ts";

/** nats-server 2.10 behaviour that Debian's 2.9.10 lacks: natter only (or a 2.10 binary). */
const test210 = test.skipIf(serverKind === "nats-server" && !process.env.NATS_SERVER_210);
/** natter's refusals of what nats-server has and natter does not. */
const natterOnly = test.skipIf(serverKind === "nats-server");

async function setup(stream: Record<string, unknown> = {}): Promise<JsConn> {
  const server = await startJs();
  const c = await connectJs(server);
  const created = await api(c.nc, "$JS.API.STREAM.CREATE.S", { name: "S", subjects: ["s.>"], ...stream });
  expect(created.error).toBeUndefined();
  return c;
}

async function publish(c: JsConn, n: number, payload = "x"): Promise<void> {
  for (let i = 1; i <= n; i++) await c.js.publish(`s.${i}`, enc(payload));
}

/** The legacy durable create (2.9 and 2.10 both have it): create or update the durable `name`. */
function durable(nc: NatsConnection, name: string, config: Record<string, unknown>): Promise<Record<string, any>> {
  return api(nc, `$JS.API.CONSUMER.DURABLE.CREATE.S.${name}`, { stream_name: "S", config: { durable_name: name, ...config } });
}

/** Messages arriving on a subject, as they come. */
function collect(nc: NatsConnection, subject: string, queue?: string): { msgs: Msg[]; at: number[]; stop: () => void } {
  const msgs: Msg[] = [];
  const at: number[] = [];
  const sub = nc.subscribe(subject, {
    ...(queue ? { queue } : {}),
    callback: (_, m) => {
      msgs.push(m);
      at.push(Date.now());
    },
  });
  return { msgs, at, stop: () => sub.unsubscribe() };
}

describe("stream create", () => {
  test("sealed: true is refused (10052), as nats-server refuses it", async () => {
    const { nc } = await setup();
    const r = await api(nc, "$JS.API.STREAM.CREATE.T", { name: "T", subjects: ["t"], sealed: true });
    expect(r.error).toEqual({ code: 500, err_code: 10052, description: "stream configuration for create can not be sealed" });
    const names = await api(nc, "$JS.API.STREAM.NAMES");
    expect(names.streams).toEqual(["S"]);
  });

  test("mirror_direct without a mirror is refused (10052)", async () => {
    const { nc } = await setup();
    const r = await api(nc, "$JS.API.STREAM.CREATE.T", { name: "T", subjects: ["t"], mirror_direct: true });
    expect(r.error).toEqual({ code: 500, err_code: 10052, description: "stream has no mirror but does have mirror direct" });
  });

  test("sealing by update also sets what a sealed stream implies", async () => {
    const { nc } = await setup({ max_age: 60_000_000_000, allow_rollup_hdrs: true, duplicate_window: 1_000_000_000 });
    const info = await api(nc, "$JS.API.STREAM.INFO.S");
    const r = await api(nc, "$JS.API.STREAM.UPDATE.S", { ...info.config, sealed: true });
    expect(r.error).toBeUndefined();
    expect(r.config).toMatchObject({ sealed: true, max_age: 0, discard: "new", deny_delete: true, deny_purge: true, allow_rollup_hdrs: false });
  });

  test("placement is kept and echoed (one server has no choice to make)", async () => {
    const { nc } = await setup();
    const r = await api(nc, "$JS.API.STREAM.CREATE.T", { name: "T", subjects: ["t"], placement: { tags: ["ssd"] } });
    expect(r.error).toBeUndefined();
    expect(r.config.placement).toEqual({ tags: ["ssd"] });
  });

  natterOnly("what natter does not have is refused, not ignored: template_owner, message counters", async () => {
    const { nc } = await setup();
    const t = await api(nc, "$JS.API.STREAM.CREATE.T", { name: "T", subjects: ["t"], template_owner: "X" });
    expect(t.error).toEqual({ code: 500, err_code: 10052, description: "stream templates are not supported by natter" });
    const counters = await api(nc, "$JS.API.STREAM.CREATE.C", { name: "C", subjects: ["c"], allow_msg_counter: true });
    expect(counters.error).toEqual({ code: 500, err_code: 10052, description: "message counters are not supported by natter" });
    // Direct consumers (what a copying server creates for a mirror or a source) are accepted and echoed.
    const d = await api(nc, "$JS.API.CONSUMER.CREATE.S", { stream_name: "S", config: { deliver_subject: "x.y", direct: true } });
    expect(d.error).toBeUndefined();
    expect(d.config.direct).toBe(true);
  });

  test210("first_seq: the first message gets that sequence", async () => {
    const c = await setup({ first_seq: 100 });
    const info = await api(c.nc, "$JS.API.STREAM.INFO.S");
    expect(info.config.first_seq).toBe(100);
    expect(info.state).toMatchObject({ messages: 0, first_seq: 100, last_seq: 99 });
    const ack = await c.js.publish("s.1", enc("x"));
    expect(ack.seq).toBe(100);
  });
});

describe("a stream's consumer_limits", () => {
  test210("are ceilings at consumer create (10121, 10153) and hold the stream's consumers on update (10069)", async () => {
    const { nc } = await setup({ consumer_limits: { max_ack_pending: 10, inactive_threshold: 10_000_000_000 } });
    const pending = await durable(nc, "a", { ack_policy: "explicit", max_ack_pending: 20 });
    expect(pending.error).toEqual({ code: 400, err_code: 10121, description: "consumer max ack pending exceeds system limit of 10" });
    const inactive = await durable(nc, "a", { ack_policy: "explicit", inactive_threshold: 90_000_000_000 });
    expect(inactive.error).toEqual({ code: 400, err_code: 10153, description: "consumer inactive threshold exceeds system limit of 10s" });
    const ok = await durable(nc, "a", { ack_policy: "explicit" });
    expect(ok.config).toMatchObject({ max_ack_pending: 10, inactive_threshold: 10_000_000_000 });
    const info = await api(nc, "$JS.API.STREAM.INFO.S");
    const tighter = await api(nc, "$JS.API.STREAM.UPDATE.S", { ...info.config, consumer_limits: { max_ack_pending: 5, inactive_threshold: 10_000_000_000 } });
    expect(tighter.error).toEqual({ code: 500, err_code: 10069, description: "change to limits violates consumers: a" });
  });
});

describe("num_replicas is echoed as asked", () => {
  test("a consumer keeps 0 and 1; a stream's 0 becomes 1", async () => {
    const { nc } = await setup();
    const info = await api(nc, "$JS.API.STREAM.INFO.S");
    expect(info.config.num_replicas).toBe(1);
    const one = await durable(nc, "one", { ack_policy: "explicit", num_replicas: 1 });
    expect(one.error).toBeUndefined();
    expect(one.config.num_replicas).toBe(1);
    const zero = await durable(nc, "zero", { ack_policy: "explicit" });
    expect(zero.config.num_replicas).toBe(0);
    const again = await api(nc, "$JS.API.CONSUMER.INFO.S.one");
    expect(again.config.num_replicas).toBe(1);
  });
});

describe("cluster-only requests on a single server", () => {
  test("STREAM.PEER.REMOVE: 10010 JetStream clustering support required", async () => {
    const { nc } = await setup();
    const r = await api(nc, "$JS.API.STREAM.PEER.REMOVE.S", { peer: "x" });
    expect(r.type).toBe("io.nats.jetstream.api.v1.stream_remove_peer_response");
    expect(r.error).toEqual({ code: 503, err_code: 10010, description: "JetStream clustering support required" });
  });
});

describe("consumer updates", () => {
  test("headers_only can be changed and applies to the next delivery", async () => {
    const c = await setup();
    await publish(c, 2, "hello");
    const created = await durable(c.nc, "d", { ack_policy: "explicit" });
    expect(created.config.headers_only).toBeUndefined();
    const updated = await durable(c.nc, "d", { ack_policy: "explicit", headers_only: true });
    expect(updated.error).toBeUndefined();
    expect(updated.config.headers_only).toBe(true);
    const consumer = await c.js.consumers.get("S", "d");
    const m = await consumer.next({ expires: 5_000 });
    expect(m).not.toBeNull();
    expect(m!.data.length).toBe(0);
    expect(m!.headers?.get("Nats-Msg-Size")).toBe("5");
  });

  test("what may change: description, ack_wait, max_ack_pending, max_deliver, filter, mem_storage, metadata-free fields", async () => {
    const c = await setup();
    await durable(c.nc, "d", { ack_policy: "explicit" });
    const r = await durable(c.nc, "d", {
      ack_policy: "explicit", description: "changed", ack_wait: 5_000_000_000, max_ack_pending: 7, max_deliver: 4,
      filter_subject: "s.1", max_batch: 3, max_expires: 2_000_000_000, mem_storage: true, headers_only: true,
    });
    expect(r.error).toBeUndefined();
    expect(r.config).toMatchObject({
      description: "changed", ack_wait: 5_000_000_000, max_ack_pending: 7, max_deliver: 4, filter_subject: "s.1", max_batch: 3,
      max_expires: 2_000_000_000, mem_storage: true, headers_only: true,
    });
  });

  test("the filter can change and applies (num_pending follows)", async () => {
    const c = await setup();
    await c.js.publish("s.a", enc("1"));
    await c.js.publish("s.b", enc("2"));
    await c.js.publish("s.b", enc("3"));
    await durable(c.nc, "f", { ack_policy: "explicit", filter_subject: "s.a" });
    const r = await durable(c.nc, "f", { ack_policy: "explicit", filter_subject: "s.b" });
    expect(r.error).toBeUndefined();
    expect(r.num_pending).toBe(2);
    const consumer = await c.js.consumers.get("S", "f");
    const m = await consumer.next({ expires: 5_000 });
    expect(m?.subject).toBe("s.b");
  });

  test.each([
    [{ deliver_policy: "last" }, "deliver policy can not be updated"],
    [{ ack_policy: "all" }, "ack policy can not be updated"],
    [{ replay_policy: "original" }, "replay policy can not be updated"],
    [{ max_waiting: 10 }, "max waiting can not be updated"],
    // Turning pull into push fails on max_waiting first (a pull consumer's default 512, a push consumer's 0).
    [{ deliver_subject: "push.here" }, "max waiting can not be updated"],
  ])("a pull consumer refuses %j", async (change, text) => {
    const c = await setup();
    await durable(c.nc, "p", { ack_policy: "explicit" });
    const r = await durable(c.nc, "p", { ack_policy: "explicit", ...change });
    expect(r.error).toEqual({ code: 500, err_code: 10012, description: text });
  });

  test.each([
    [{ idle_heartbeat: 2_000_000_000 }, "heart beats can not be updated"],
    [{ flow_control: true, idle_heartbeat: 1_000_000_000 }, "flow control can not be updated"],
  ])("a push consumer refuses %j", async (change, text) => {
    const c = await setup();
    await durable(c.nc, "h", { ack_policy: "explicit", deliver_subject: "push.h", idle_heartbeat: 1_000_000_000 });
    const base: Record<string, unknown> = { ack_policy: "explicit", deliver_subject: "push.h", idle_heartbeat: 1_000_000_000 };
    const r = await durable(c.nc, "h", { ...base, ...change });
    expect(r.error).toEqual({ code: 500, err_code: 10012, description: text });
  });

  test("turning push into pull fails on max_waiting, as nats-server checks it first", async () => {
    const c = await setup();
    await durable(c.nc, "h", { ack_policy: "explicit", deliver_subject: "push.h" });
    const r = await durable(c.nc, "h", { ack_policy: "explicit" });
    expect(r.error).toEqual({ code: 500, err_code: 10012, description: "max waiting can not be updated" });
  });
});

describe("a durable push consumer in use", () => {
  test("another create with a different deliver subject is refused (10013); unused, it is re-pointed", async () => {
    const c = await setup();
    await publish(c, 1);
    const first = await durable(c.nc, "d", { ack_policy: "explicit", deliver_subject: "deliver.one" });
    expect(first.error).toBeUndefined();
    const one = collect(c.nc, "deliver.one");
    await until(() => one.msgs.length === 1, 10_000, "the first subscriber's message");
    const second = await durable(c.nc, "d", { ack_policy: "explicit", deliver_subject: "deliver.two" });
    expect(second.error).toEqual({ code: 400, err_code: 10013, description: "consumer name already in use" });
    expect((await api(c.nc, "$JS.API.CONSUMER.INFO.S.d")).config.deliver_subject).toBe("deliver.one");

    one.stop();
    await c.nc.flush();
    const two = collect(c.nc, "deliver.two");
    const moved = await durable(c.nc, "d", { ack_policy: "explicit", deliver_subject: "deliver.two" });
    expect(moved.error).toBeUndefined();
    expect(moved.config.deliver_subject).toBe("deliver.two");
    // What was pending (not acked on the old subject) goes again to the new one.
    await until(() => two.msgs.length >= 1, 10_000, "redelivery to the new deliver subject");
    expect(two.msgs[0]!.subject).toBe("s.1");
  });
});

describe("ten subscribers to one durable (nats v2 js.subscribe, all at once)", () => {
  test("one attaches; the others are told the name is in use", async () => {
    const server = await startJs();
    const nc = await connectV2(server);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"] });
    const js = nc.jetstream();
    const tries = Array.from({ length: 10 }, () => {
      const opts = consumerOpts();
      opts.durable("d");
      opts.deliverTo(createInbox());
      opts.ackExplicit();
      return js.subscribe("s.>", opts);
    });
    const results = await Promise.allSettled(tries);
    const attached = results.filter((r) => r.status === "fulfilled");
    expect(attached).toHaveLength(1);
    // nats-server 2.9 is asked with the legacy create (10013 name in use); against a 2.10 server the client
    // sends action "create", which a 2.10 server answers with 10148 already exists.
    for (const r of results) if (r.status === "rejected") expect(String(r.reason)).toMatch(/consumer name already in use|consumer already exists|duplicate subscription/);
    await nc.close();
  });
});

describe("store-specific answers", () => {
  test("memory stream: deleting past the end or a missing sequence is 10043", async () => {
    const c = await setup({ storage: "memory" });
    await publish(c, 3);
    const past = await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: 100 });
    expect(past.error).toEqual({ code: 400, err_code: 10043, description: "sequence 100 not found" });
    await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: 2 });
    const again = await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: 2 });
    expect(again.error).toEqual({ code: 400, err_code: 10043, description: "sequence 2 not found" });
  });

  test("file stream: deleting past the end is the store's EOF (10057)", async () => {
    const c = await setup({ storage: "file" });
    await publish(c, 3);
    const past = await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: 100 });
    expect(past.error).toEqual({ code: 500, err_code: 10057, description: "stream store EOF" });
  });

  test.each([
    ["memory", { code: 400, err_code: 10043, description: "sequence 0 not found" }],
    ["file", { code: 500, err_code: 10057, description: "no message found" }],
  ])("%s stream: deleting sequence 0 is the store's answer", async (storage, error) => {
    const c = await setup({ storage });
    await publish(c, 1);
    expect((await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: 0 })).error).toEqual(error);
    expect((await api(c.nc, "$JS.API.STREAM.MSG.DELETE.S", { seq: -1 })).error).toEqual({ code: 400, err_code: 10025, description: "invalid JSON" });
  });

  test("an empty delete or get request is 10003 bad request (nats-server's isEmptyRequest)", async () => {
    const c = await setup();
    const bad = { code: 400, err_code: 10003, description: "bad request" };
    for (const op of ["DELETE", "GET"]) {
      expect((await api(c.nc, `$JS.API.STREAM.MSG.${op}.S`, {})).error).toEqual(bad);
      expect((await api(c.nc, `$JS.API.STREAM.MSG.${op}.S`)).error).toEqual(bad);
    }
  });

  test.each(["memory", "file"])("%s stream: a get past the end is 10037", async (storage) => {
    const c = await setup({ storage });
    await publish(c, 1);
    const r = await api(c.nc, "$JS.API.STREAM.MSG.GET.S", { seq: 100 });
    expect(r.error).toEqual({ code: 404, err_code: 10037, description: "no message found" });
  });

  test.each(["memory", "file"])("%s stream: a purge up to a sequence past the end moves the sequence there", async (storage) => {
    const c = await setup({ storage });
    await publish(c, 3);
    const r = await api(c.nc, "$JS.API.STREAM.PURGE.S", { seq: 50 });
    expect(r).toMatchObject({ success: true, purged: 3 });
    const info = await api(c.nc, "$JS.API.STREAM.INFO.S");
    expect(info.state).toMatchObject({ messages: 0, first_seq: 50, last_seq: 49 });
    expect((await c.js.publish("s.1", enc("x"))).seq).toBe(50);
  });
});

describe("consumer fields that must have their effect", () => {
  test("rate_limit_bps paces a push consumer's deliveries", async () => {
    // max_msg_size 1000 makes the limiter's burst 1000 bytes; 8000 bps is 1000 bytes a second.
    const c = await setup({ max_msg_size: 1000 });
    await publish(c, 5, "x".repeat(400));
    const got = collect(c.nc, "paced");
    const started = Date.now();
    const r = await durable(c.nc, "r", { ack_policy: "none", deliver_subject: "paced", rate_limit_bps: 8000 });
    expect(r.error).toBeUndefined();
    expect(r.config.rate_limit_bps).toBe(8000);
    await until(() => got.msgs.length === 5, 20_000, "five paced deliveries");
    // ~2300 bytes at 1000 B/s after a 1000-byte burst: at least ~1.3 s; unpaced it takes milliseconds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  test("a pull consumer can not have a rate limit (10086)", async () => {
    const { nc } = await setup();
    const r = await durable(nc, "p", { ack_policy: "explicit", rate_limit_bps: 1000 });
    expect(r.error).toEqual({ code: 400, err_code: 10086, description: "consumer in pull mode can not have rate limit set" });
  });

  test("a direct consumer is an ephemeral push one (10090, 10091); one server has no replicas (10074)", async () => {
    const { nc } = await setup();
    const r3 = await durable(nc, "r3", { ack_policy: "explicit", num_replicas: 3 });
    expect(r3.error).toEqual({ code: 500, err_code: 10074, description: "replicas > 1 not supported in non-clustered mode" });
    expect((await durable(nc, "r1", { ack_policy: "explicit", num_replicas: 1 })).error).toBeUndefined();
    const pull = await api(nc, "$JS.API.CONSUMER.CREATE.S", { stream_name: "S", config: { ack_policy: "none", direct: true } });
    expect(pull.error).toEqual({ code: 400, err_code: 10090, description: "consumer direct requires a push based consumer" });
    const named = await durable(nc, "d", { ack_policy: "none", deliver_subject: "direct.out", direct: true });
    expect(named.error).toEqual({ code: 400, err_code: 10091, description: "consumer direct requires an ephemeral consumer" });
  });

  test("sample_freq publishes ack-latency samples on $JS.EVENT.METRIC.CONSUMER.ACK", async () => {
    const c = await setup();
    await publish(c, 1);
    const metrics = collect(c.nc, "$JS.EVENT.METRIC.CONSUMER.ACK.S.m");
    await c.nc.flush();
    const r = await durable(c.nc, "m", { ack_policy: "explicit", sample_freq: "100%" });
    expect(r.config.sample_freq).toBe("100%");
    const consumer = await c.js.consumers.get("S", "m");
    const m = await consumer.next({ expires: 5_000 });
    await m!.ackAck();
    await until(() => metrics.msgs.length === 1, 10_000, "an ack metric");
    const e = JSON.parse(dec(metrics.msgs[0]!.data));
    expect(e).toMatchObject({ type: "io.nats.jetstream.metric.v1.consumer_ack", stream: "S", consumer: "m", consumer_seq: 1, stream_seq: 1, deliveries: 1 });
    expect(typeof e.id).toBe("string");
    expect(Number.isNaN(Date.parse(e.timestamp))).toBe(false);
    expect(e.ack_time).toBeGreaterThan(0);
    expect(Object.keys(e).sort()).toEqual(["ack_time", "consumer", "consumer_seq", "deliveries", "id", "stream", "stream_seq", "timestamp", "type"]);
  });

  test.each([
    ["abc", 'failed to parse consumer sampling configuration: strconv.Atoi: parsing "abc": invalid syntax'],
    ["-5%", "failed to parse consumer sampling configuration: <nil>"],
  ])("sample_freq %j is refused (10095)", async (freq, text) => {
    const { nc } = await setup();
    const r = await durable(nc, "m", { ack_policy: "explicit", sample_freq: freq });
    expect(r.error).toEqual({ code: 400, err_code: 10095, description: text });
  });

  test("replay_policy original delivers stored messages with their original spacing", async () => {
    const c = await setup();
    // The gaps between these publishes are what is replayed: the pause creates them, it synchronizes nothing.
    await c.js.publish("s.1", enc("1"));
    await new Promise((r) => setTimeout(r, 700));
    await c.js.publish("s.2", enc("2"));
    await new Promise((r) => setTimeout(r, 700));
    await c.js.publish("s.3", enc("3"));
    const got = collect(c.nc, "replayed");
    const r = await durable(c.nc, "o", { ack_policy: "none", deliver_subject: "replayed", replay_policy: "original" });
    expect(r.error).toBeUndefined();
    await until(() => got.msgs.length === 3, 20_000, "three replayed messages");
    expect(got.at[2]! - got.at[0]!).toBeGreaterThanOrEqual(1_000);
  });

  test("deliver_group: only members of that queue group make the consumer bound", async () => {
    const c = await setup();
    const r = await durable(c.nc, "g", { ack_policy: "explicit", deliver_subject: "grouped", deliver_group: "workers" });
    expect(r.error).toBeUndefined();
    const plain = collect(c.nc, "grouped");
    const member = collect(c.nc, "grouped", "workers");
    const bound = async () => (await api(c.nc, "$JS.API.CONSUMER.INFO.S.g")).push_bound === true;
    await until(bound, 10_000, "bound with a group member");
    member.stop();
    await c.nc.flush();
    await until(async () => !(await bound()), 10_000, "unbound with only a plain subscriber");
    plain.stop();
  });
});

describe("deliveries after a re-create", () => {
  test("the consumer keeps delivering to a raw inbox after an allowed update", async () => {
    const c = await setup();
    const inbox = createInbox();
    const got = collect(c.nc, inbox);
    await durable(c.nc, "u", { ack_policy: "none", deliver_subject: inbox });
    await durable(c.nc, "u", { ack_policy: "none", deliver_subject: inbox, description: "updated" });
    await publish(c, 2);
    await until(() => got.msgs.length === 2, 10_000, "two deliveries");
  });
});
