// Streams are per account (nats-server's jsAccount): each account with JetStream has its own streams,
// consumers and KV buckets under <store_dir>/jetstream/<account>/, its own limits, and never sees another
// account's messages; an account without JetStream gets `JetStream not enabled for account` (503, 10039).
import { existsSync } from "node:fs";
import path from "node:path";
import { AckPolicy, DeliverPolicy, type PubAck } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { describe, expect, test } from "vitest";
import { connectV3 } from "../harness/clients.ts";
import { freePort, startServer, type ServerOptions } from "../harness/server.ts";
import { api, connectJs, dec, enc, until } from "./helpers.ts";

const ACCOUNTS = `
accounts {
  A: { jetstream: enabled, users: [{user: a, password: a}] }
  B: { jetstream: enabled, users: [{user: b, password: b}] }
  C: { users: [{user: c, password: c}] }
  L: { jetstream: { max_streams: 1, max_file: 4000, max_consumers: 1 }, users: [{user: l, password: l}] }
}
`;

async function start(opts: ServerOptions = {}) {
  return startServer({ jetstream: true, config: ACCOUNTS, ...opts });
}

const as = (user: string) => ({ user, pass: user });

describe("streams per account", () => {
  test("two accounts with a stream of the same name and subjects never see each other's messages", async () => {
    const server = await start();
    const a = await connectJs(server, as("a"));
    const b = await connectJs(server, as("b"));
    await a.jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    await b.jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    for (let i = 0; i < 3; i++) expect((await a.js.publish("orders.new", enc(`a${i}`))).seq).toBe(i + 1);
    for (let i = 0; i < 5; i++) expect((await b.js.publish("orders.new", enc(`b${i}`))).seq).toBe(i + 1);
    expect((await a.jsm.streams.info("ORDERS")).state.messages).toBe(3);
    expect((await b.jsm.streams.info("ORDERS")).state.messages).toBe(5);
    expect(await a.jsm.streams.names().next()).toEqual(["ORDERS"]);

    // Pull consumers of the same name: each reads its own account's messages.
    for (const c of [a, b]) await c.jsm.consumers.add("ORDERS", { durable_name: "work", ack_policy: AckPolicy.Explicit });
    const read = async (c: typeof a, n: number) => {
      const out: string[] = [];
      const iter = await (await c.js.consumers.get("ORDERS", "work")).fetch({ max_messages: n, expires: 2_000 });
      for await (const m of iter) {
        out.push(dec(m.data));
        m.ack();
      }
      return out;
    };
    expect(await read(a, 3)).toEqual(["a0", "a1", "a2"]);
    expect(await read(b, 5)).toEqual(["b0", "b1", "b2", "b3", "b4"]);

    // A push consumer of A delivers to A's subscribers of its deliver subject only.
    const seenB: string[] = [];
    b.nc.subscribe("push.here", { callback: (_e, m) => void seenB.push(m.subject) });
    const seenA: string[] = [];
    a.nc.subscribe("push.here", { callback: (_e, m) => void seenA.push(dec(m.data)) });
    await a.jsm.consumers.add("ORDERS", { durable_name: "push", deliver_subject: "push.here", ack_policy: AckPolicy.None });
    await until(() => seenA.length === 3, 5_000, "A's push deliveries");
    await b.nc.flush();
    expect(seenA).toEqual(["a0", "a1", "a2"]);
    expect(seenB).toEqual([]);

    // An ack sent from B on A's ack subject does not reach A's consumer (same stream and consumer names).
    await a.jsm.consumers.add("ORDERS", { durable_name: "acks", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000 });
    const m = (await (await a.js.consumers.get("ORDERS", "acks")).next({ expires: 2_000 }))!;
    const ackSubject = (m as unknown as { reply: string }).reply;
    expect(ackSubject).toMatch(/^\$JS\.ACK\.ORDERS\.acks\./);
    b.nc.publish(ackSubject, enc("+ACK"));
    await b.nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    expect((await a.jsm.consumers.info("ORDERS", "acks")).num_ack_pending).toBe(1);
    await m.ackAck();
    expect((await a.jsm.consumers.info("ORDERS", "acks")).num_ack_pending).toBe(0);

    // Deleting B's stream leaves A's.
    await b.jsm.streams.delete("ORDERS");
    expect((await a.jsm.streams.info("ORDERS")).state.messages).toBe(3);
    expect(existsSync(path.join(server.storeDir!, "jetstream", "A", "streams", "ORDERS"))).toBe(true);
    expect(existsSync(path.join(server.storeDir!, "jetstream", "B", "streams", "ORDERS"))).toBe(false);
  });

  test("an account without JetStream gets 503 / 10039 from the API", async () => {
    const server = await start();
    const nc = (await connectV3(server, as("c"))) as any;
    const info = await api(nc, "$JS.API.INFO");
    expect(info).toEqual({
      type: "io.nats.jetstream.api.v1.account_info_response",
      error: { code: 503, err_code: 10039, description: "JetStream not enabled for account" },
    });
    const create = await api(nc, "$JS.API.STREAM.CREATE.X", { name: "X", subjects: ["x"] });
    expect(create.type).toBe("io.nats.jetstream.api.v1.stream_create_response");
    expect(create.error).toEqual({ code: 503, err_code: 10039, description: "JetStream not enabled for account" });
    const names = await api(nc, "$JS.API.STREAM.NAMES");
    expect(names.error.err_code).toBe(10039);
    // Nothing captures a publish there.
    const a = await connectJs(server, as("a"));
    await a.jsm.streams.add({ name: "X", subjects: ["x"] });
    await expect(nc.request("x", enc("1"), { timeout: 1_000 })).rejects.toThrow(/no responders|503/i);
    expect((await a.jsm.streams.info("X")).state.messages).toBe(0);
  });

  test("account limits: max_streams, max_consumers, storage quota, reported in $JS.API.INFO", async () => {
    const server = await start();
    const l = await connectJs(server, as("l"));
    await l.jsm.streams.add({ name: "ONE", subjects: ["one.>"] });
    await expect(l.jsm.streams.add({ name: "TWO", subjects: ["two.>"] })).rejects.toThrow(/maximum number of streams reached/);
    const two = await api(l.nc, "$JS.API.STREAM.CREATE.TWO", { name: "TWO", subjects: ["two.>"] });
    expect(two.error).toEqual({ code: 400, err_code: 10027, description: "maximum number of streams reached" });
    // Updating the one stream is not a new stream; reserving more than the account's max_file is refused.
    const big = await api(l.nc, "$JS.API.STREAM.UPDATE.ONE", { name: "ONE", subjects: ["one.>"], max_bytes: 10_000 });
    expect(big.error).toEqual({ code: 500, err_code: 10047, description: "insufficient storage resources available" });

    await l.jsm.consumers.add("ONE", { durable_name: "c1", ack_policy: AckPolicy.Explicit });
    await expect(l.jsm.consumers.add("ONE", { durable_name: "c2", ack_policy: AckPolicy.Explicit })).rejects.toThrow(/maximum consumers limit reached/);

    // The storage quota (4000 bytes): a publish past it gets nats-server's error in the PubAck.
    const payload = enc("x".repeat(1000));
    let stored = 0;
    let refused: unknown = null;
    for (let i = 0; i < 10 && refused === null; i++) {
      try {
        await l.js.publish("one.a", payload);
        stored++;
      } catch (error) {
        refused = error;
      }
    }
    expect(stored).toBeGreaterThanOrEqual(3);
    expect(stored).toBeLessThan(4);
    expect(String(refused)).toMatch(/resource limits exceeded for account/);
    const raw = await l.nc.request("one.a", payload, { timeout: 2_000 });
    expect(JSON.parse(dec(raw.data))).toEqual({
      error: { code: 400, err_code: 10002, description: "resource limits exceeded for account" }, stream: "ONE", seq: 0,
    });

    const info = await api(l.nc, "$JS.API.INFO");
    expect(info).toMatchObject({
      type: "io.nats.jetstream.api.v1.account_info_response",
      streams: 1, consumers: 1, memory: 0,
      limits: { max_memory: -1, max_storage: 4000, max_streams: 1, max_consumers: 1 },
    });
    expect(info.storage).toBeGreaterThanOrEqual(3000);
    expect(info.storage).toBeLessThanOrEqual(4000);
    // Other accounts are not limited by L's limits.
    const a = await connectJs(server, as("a"));
    for (const n of ["S1", "S2", "S3"]) await a.jsm.streams.add({ name: n, subjects: [`${n}.>`] });
    const ai = await api(a.nc, "$JS.API.INFO");
    expect(ai).toMatchObject({ streams: 3, limits: { max_memory: -1, max_storage: -1, max_streams: -1, max_consumers: -1 } });
  });

  test("account limits: max_bytes_required, per-stream max bytes, max_ack_pending, reported in $JS.API.INFO", async () => {
    const server = await start({
      config: "accounts {\n  M: { jetstream: { max_bytes_required: true, disk_max_stream_bytes: 2000, mem_max_stream_bytes: 1000, max_ack_pending: 50 }, users: [{user: m, password: m}] }\n}\n",
    });
    const m = await connectJs(server, as("m"));
    const create = (config: Record<string, unknown>) => api(m.nc, `$JS.API.STREAM.CREATE.${config.name}`, config);
    expect((await create({ name: "NOMAX", subjects: ["nomax"] })).error).toEqual({ code: 400, err_code: 10113, description: "account requires a stream config to have max bytes set" });
    expect((await create({ name: "BIG", subjects: ["big"], max_bytes: 2001 })).error).toEqual({ code: 400, err_code: 10122, description: "stream max bytes exceeds account limit max stream bytes" });
    expect((await create({ name: "BIGMEM", subjects: ["bigmem"], max_bytes: 1001, storage: "memory" })).error).toMatchObject({ err_code: 10122 });
    expect((await create({ name: "OK", subjects: ["ok"], max_bytes: 2000 })).error).toBeUndefined();
    // A consumer's max_ack_pending: the account's limit is its default (below nats-server's 1000) and its ceiling.
    const c = await api(m.nc, "$JS.API.CONSUMER.DURABLE.CREATE.OK.d", { stream_name: "OK", config: { durable_name: "d", ack_policy: "explicit" } });
    expect(c.config.max_ack_pending).toBe(50);
    const over = await api(m.nc, "$JS.API.CONSUMER.DURABLE.CREATE.OK.e", { stream_name: "OK", config: { durable_name: "e", ack_policy: "explicit", max_ack_pending: 51 } });
    expect(over.error).toEqual({ code: 400, err_code: 10121, description: "consumer max ack pending exceeds system limit of 50" });
    const info = await api(m.nc, "$JS.API.INFO");
    expect(info.limits).toMatchObject({ max_ack_pending: 50, memory_max_stream_bytes: 1000, storage_max_stream_bytes: 2000, max_bytes_required: true });
  });

  test("kill -9 and restart: each account keeps its own streams, nothing acknowledged is lost", async () => {
    const server = await start();
    const acked = new Map<string, Map<string, number>>();
    for (const user of ["a", "b"]) {
      const c = await connectJs(server, as(user));
      await c.jsm.streams.add({ name: "EVENTS", subjects: ["ev.>"] });
      await c.jsm.consumers.add("EVENTS", { durable_name: "d", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
      const mine = new Map<string, number>();
      acked.set(user, mine);
      const n = user === "a" ? 200 : 300;
      const acks = await Promise.all(Array.from({ length: n }, (_, i) => c.js.publish(`ev.${i % 5}`, enc(`${user}-${i}`))));
      acks.forEach((ack: PubAck, i) => mine.set(`${user}-${i}`, ack.seq));
    }
    await server.kill9();
    await server.restart();
    for (const user of ["a", "b"]) {
      const c = await connectJs(server, as(user));
      const mine = acked.get(user)!;
      const info = await c.jsm.streams.info("EVENTS");
      expect(info.state.messages).toBe(mine.size);
      const seen = new Map<string, number>();
      const iter = await (await c.js.consumers.get("EVENTS", "d")).fetch({ max_messages: mine.size, expires: 5_000 });
      for await (const m of iter) {
        seen.set(dec(m.data), m.seq);
        m.ack();
        if (m.info.pending === 0) break;
      }
      expect(seen).toEqual(mine);
    }
  }, 60_000);

  test("KV buckets of the same name in two accounts are separate", async () => {
    const server = await start();
    const a = await connectJs(server, as("a"));
    const b = await connectJs(server, as("b"));
    const ka = await new Kvm(a.nc).create("cfg");
    const kb = await new Kvm(b.nc).create("cfg");
    const watched: string[] = [];
    const watch = await ka.watch({ key: ">" });
    void (async () => {
      for await (const e of watch) watched.push(`${e.key}=${e.string()}`);
    })();
    await ka.put("color", "red");
    await kb.put("color", "blue");
    await kb.put("size", "L");
    expect((await ka.get("color"))!.string()).toBe("red");
    expect((await kb.get("color"))!.string()).toBe("blue");
    expect(await ka.get("size")).toBeNull();
    const keys = async (kv: typeof ka) => {
      const out: string[] = [];
      for await (const k of await kv.keys()) out.push(k);
      return out.sort();
    };
    expect(await keys(ka)).toEqual(["color"]);
    expect(await keys(kb)).toEqual(["color", "size"]);
    await until(() => watched.length >= 1, 5_000, "A's watch");
    await new Promise((r) => setTimeout(r, 100));
    expect(watched).toEqual(["color=red"]);
    watch.stop();
  });

  test("/jsz: totals over accounts, per-account details", async () => {
    const mport = await freePort();
    const server = await start({ args: ["-m", String(mport)] });
    const a = await connectJs(server, as("a"));
    const b = await connectJs(server, as("b"));
    await a.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await b.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await b.jsm.streams.add({ name: "T", subjects: ["t.>"] });
    await a.js.publish("s.1", enc("x"));
    for (let i = 0; i < 2; i++) await b.js.publish("t.1", enc("y"));
    const get = async (q: string) => (await fetch(`http://127.0.0.1:${mport}/jsz${q}`)).json() as Promise<Record<string, any>>;
    const all = await get("?accounts=1&streams=1");
    expect(all).toMatchObject({ accounts: 3, streams: 3, messages: 3 });
    const details = all.account_details.map((d: any) => [d.name, (d.stream_detail ?? []).map((s: any) => s.name).sort()]);
    expect(details.sort()).toEqual([
      ["A", ["S"]], ["B", ["S", "T"]], ["L", []],
    ]);
    const onlyB = await get("?acc=B&streams=1");
    expect(onlyB.account_details.map((d: any) => d.name)).toEqual(["B"]);
    expect(onlyB.account_details[0].stream_detail.find((s: any) => s.name === "T").state.messages).toBe(2);
    expect((await get("")).account_details).toBeUndefined();
  });
});
