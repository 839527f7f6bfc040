// Consumer pause and priority groups, nats-server 2.11 features: 2.9.10 has neither, so these run against
// natter only (shapes checked against nats-server's source: consumer.go, jetstream_api.go, jetstream_events.go).
// @nats-io/jetstream 3.x has pause/resume/unpin and (for servers that say 2.11.0, as natter does) priority
// groups; most tests make and pull consumers with raw API requests to see the exact statuses, the last one
// uses the client's pinned consume.
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { api, collectJson, connectJs, dec, enc, startJs, until } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");
const SEC = 1_000_000_000;
/** A time as Go's RFC 3339 text (nats-server's): trailing zeros of the fraction dropped. */
const goTime = (d: Date) => d.toISOString().replace(/\.?0+Z$/, "Z");

/** What came back to one pull request: messages, and the status that ended it (if any). */
interface Pulled {
  msgs: Msg[];
  status: string;
}

/** Sends a JSON pull request and collects what comes back on its inbox. */
function pull(nc: NatsConnection, stream: string, consumer: string, req: Record<string, unknown>): Pulled {
  const inbox = `_INBOX.pull.${Math.random().toString(36).slice(2)}`;
  const out: Pulled = { msgs: [], status: "" };
  nc.subscribe(inbox, {
    callback: (_e, m) => {
      if (m.headers?.code) out.status = `${m.headers.code} ${m.headers.description}`;
      else out.msgs.push(m);
    },
  });
  nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, enc(JSON.stringify(req)), { reply: inbox });
  return out;
}

describe("consumer pause", () => {
  natterOnly("pause_until holds deliveries back; info shows paused / pause_remaining; the advisory says when it ends", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    const advisories = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.P");
    await c.nc.flush();
    const pauseUntil = goTime(new Date(Date.now() + 1500));
    const ci = await c.jsm.consumers.add("S", { durable_name: "P", ack_policy: "explicit" as any, pause_until: pauseUntil } as any);
    expect((ci.config as any).pause_until).toBe(pauseUntil);
    expect(ci.paused).toBe(true);
    expect(ci.pause_remaining).toBeGreaterThan(0);
    expect(ci.pause_remaining).toBeLessThanOrEqual(1.5 * SEC);
    await c.js.publish("s.a", "1");
    const started = Date.now();
    const got = pull(c.nc, "S", "P", { batch: 1, expires: 10 * SEC });
    await until(() => got.msgs.length === 1, 8_000, "the delivery after the pause");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    await until(() => advisories.length === 1, 5_000, "the resume advisory");
    expect(advisories[0]).toMatchObject({
      type: "io.nats.jetstream.advisory.v1.consumer_pause", stream: "S", consumer: "P", paused: false, pause_until: pauseUntil,
    });
    const after = await c.jsm.consumers.info("S", "P");
    expect(after.paused).toBeUndefined();
    expect(after.pause_remaining).toBeUndefined();
    await server.stop();
  });

  natterOnly("CONSUMER.PAUSE pauses and resumes (the client's pause/resume), with advisories; errors", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await c.jsm.consumers.add("S", { durable_name: "P", ack_policy: "explicit" as any });
    const advisories = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.P");
    await c.nc.flush();
    const until1h = new Date(Date.now() + 3_600_000);
    const paused = await c.jsm.consumers.pause("S", "P", until1h);
    expect(paused).toMatchObject({ paused: true, pause_until: goTime(until1h) });
    expect((paused as any).pause_remaining).toBeGreaterThan(3_500 * SEC); // the client's type lacks it
    const raw = await api(c.nc, "$JS.API.CONSUMER.INFO.S.P");
    expect(raw.paused).toBe(true);
    expect(raw.config.pause_until).toBe(goTime(until1h));
    await c.js.publish("s.a", "1");
    const got = pull(c.nc, "S", "P", { batch: 1, expires: 10 * SEC });
    await c.nc.flush();
    // The request waits: a delivery would have come before this answer (same connection, sent first).
    const waiting = await c.jsm.consumers.info("S", "P");
    expect([waiting.num_waiting, waiting.num_pending, waiting.delivered.consumer_seq]).toEqual([1, 1, 0]);
    expect(got.msgs.length).toBe(0);
    // The client's resume sends 1970-01-01: kept as a past time, not paused.
    const resumed = await c.jsm.consumers.resume("S", "P");
    expect(resumed).toMatchObject({ paused: false, pause_until: "1970-01-01T00:00:00Z" });
    expect((resumed as any).pause_remaining).toBeUndefined();
    await until(() => got.msgs.length === 1, 5_000, "the delivery after resume");
    await until(() => advisories.length === 2, 5_000, "two advisories");
    expect(advisories.map((a) => [a.paused, a.pause_until])).toEqual([[true, goTime(until1h)], [false, "1970-01-01T00:00:00Z"]]);
    // An empty request clears pause_until (Go's zero time).
    expect(await api(c.nc, "$JS.API.CONSUMER.PAUSE.S.P")).toEqual({
      type: "io.nats.jetstream.api.v1.consumer_pause_response", paused: false, pause_until: "0001-01-01T00:00:00Z",
    });
    expect((await c.jsm.consumers.info("S", "P")).config.pause_until).toBeUndefined();
    expect((await api(c.nc, "$JS.API.CONSUMER.PAUSE.S.NOPE", {})).error).toEqual({ code: 404, err_code: 10014, description: "consumer not found" });
    expect((await api(c.nc, "$JS.API.CONSUMER.PAUSE.NOPE.P", {})).error).toEqual({ code: 404, err_code: 10059, description: "stream not found" });
    await server.stop();
  });

  natterOnly("a paused push consumer delivers nothing until resumed", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    const got: string[] = [];
    c.nc.subscribe("deliver.here", {
      callback: (_e, m) => {
        got.push(dec(m.data));
      },
    });
    await c.nc.flush();
    await c.jsm.consumers.add("S", { durable_name: "PUSH", deliver_subject: "deliver.here", ack_policy: "none" as any });
    await c.jsm.consumers.pause("S", "PUSH", new Date(Date.now() + 3_600_000));
    await c.js.publish("s.a", "1");
    await c.js.publish("s.a", "2");
    // A delivery would have come before this answer (same connection, sent first).
    expect((await c.jsm.consumers.info("S", "PUSH")).delivered.consumer_seq).toBe(0);
    expect(got).toEqual([]);
    await c.jsm.consumers.resume("S", "PUSH");
    await until(() => got.length === 2, 5_000, "the deliveries after resume");
    expect(got).toEqual(["1", "2"]);
    await server.stop();
  });

  natterOnly("a pause survives a restart", async () => {
    const server = await startJs();
    let c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await c.jsm.consumers.add("S", { durable_name: "P", ack_policy: "explicit" as any });
    await c.jsm.consumers.pause("S", "P", new Date(Date.now() + 3_600_000));
    await c.nc.close();
    await server.restart();
    c = await connectJs(server);
    expect((await c.jsm.consumers.info("S", "P")).paused).toBe(true);
    await server.stop();
  });
});

describe("priority groups", () => {
  const pinnedConfig = { durable_name: "C", ack_policy: "explicit", priority_groups: ["A"], priority_policy: "pinned_client" };
  const create = (nc: NatsConnection, config: Record<string, unknown>) =>
    api(nc, `$JS.API.CONSUMER.CREATE.S.${config.durable_name}`, { stream_name: "S", config });

  natterOnly("config checks, as nats-server's", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    const err = async (config: Record<string, unknown>) => (await create(c.nc, { durable_name: "X", ack_policy: "explicit", ...config })).error;
    expect(await err({ priority_policy: "pinned_client", priority_groups: ["A"], deliver_subject: "d" })).toEqual({
      code: 400, err_code: 10178, description: "priority groups can not be used with push consumers",
    });
    expect((await err({ priority_policy: "overflow" })).err_code).toBe(10159);
    expect((await err({ priority_policy: "overflow", priority_groups: [""] })).err_code).toBe(10161);
    expect((await err({ priority_policy: "overflow", priority_groups: ["way-too-long-group-name"] })).err_code).toBe(10162);
    expect(await err({ priority_groups: ["A"] })).toEqual({ code: 400, err_code: 10196, description: "consumer can not have priority groups when policy is none" });
    expect((await err({ priority_timeout: SEC })).err_code).toBe(10197);
    const ok = await create(c.nc, pinnedConfig);
    // pinned_client gets nats-server's default priority_timeout (2m).
    expect(ok.config).toMatchObject({ priority_groups: ["A"], priority_policy: "pinned_client", priority_timeout: 120 * SEC });
    expect(ok.priority_groups).toEqual([{ group: "A", pinned_ts: "0001-01-01T00:00:00Z" }]);
    await server.stop();
  });

  natterOnly("pinned_client: one client holds the pin; others wait or get 423; unpin moves it", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await create(c.nc, pinnedConfig);
    const pinned = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.PINNED.S.C");
    const unpinned = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.C");
    await c.nc.flush();
    // Bad requests, as nats-server answers them.
    const bad = async (req: Record<string, unknown>) => {
      const p = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, ...req });
      await until(() => p.status !== "", 5_000, "a status");
      return p.status;
    };
    expect(await bad({})).toBe("400 Bad Request - Priority Group missing");
    expect(await bad({ group: "B" })).toBe("400 Bad Request - Invalid Priority Group");
    expect(await bad({ group: "A", min_pending: 1 })).toBe("400 Bad Request - Not a Overflow Priority consumer");

    await c.js.publish("s.a", "1");
    const first = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, group: "A" });
    await until(() => first.msgs.length === 1, 5_000, "the first delivery");
    const pin = first.msgs[0]!.headers!.get("Nats-Pin-Id");
    expect(pin).toMatch(/^[A-Za-z0-9]{22}$/);
    await until(() => pinned.length === 1, 5_000, "the pinned advisory");
    expect(pinned[0]).toMatchObject({ type: "io.nats.jetstream.advisory.v1.consumer_group_pinned", stream: "S", consumer: "C", group: "A", pinned_id: pin });
    const info = await api(c.nc, "$JS.API.CONSUMER.INFO.S.C");
    expect(info.priority_groups).toEqual([{ group: "A", pinned_client_id: pin, pinned_ts: expect.any(String) }]);
    expect(await bad({ group: "A", id: "not-the-pin" })).toBe("423 Nats-Pin-Id mismatch");

    // Another client without the id waits; the pin holder gets the next message.
    const other = pull(c.nc, "S", "C", { batch: 1, expires: 1 * SEC, group: "A" });
    const holder = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, group: "A", id: pin });
    await c.nc.flush();
    await c.js.publish("s.a", "2");
    await until(() => holder.msgs.length === 1, 5_000, "the pin holder's delivery");
    expect(holder.msgs[0]!.headers!.get("Nats-Pin-Id")).toBe(pin);
    await until(() => other.status !== "", 5_000, "the waiting request to expire");
    expect(other.status).toBe("408 Request Timeout");
    expect(other.msgs.length).toBe(0);

    // Unpin: a waiting request with the old id gets 423 Nats-Wrong-Pin-Id; the next one without an id is pinned.
    const stale = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, group: "A", id: pin });
    const next = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, group: "A" });
    await c.nc.flush();
    expect(await c.jsm.consumers.unpin("S", "C", "A")).toMatchObject({ type: "io.nats.jetstream.api.v1.consumer_unpin_response" });
    await until(() => stale.status !== "", 5_000, "423 for the stale pin");
    expect(stale.status).toBe("423 Nats-Wrong-Pin-Id");
    await c.js.publish("s.a", "3");
    await until(() => next.msgs.length === 1, 5_000, "the new pin's delivery");
    const pin2 = next.msgs[0]!.headers!.get("Nats-Pin-Id");
    expect(pin2).not.toBe(pin);
    expect(unpinned[0]).toMatchObject({ type: "io.nats.jetstream.advisory.v1.consumer_group_unpinned", group: "A", reason: "admin" });
    // Unpin errors.
    expect((await api(c.nc, "$JS.API.CONSUMER.UNPIN.S.C", {})).error).toEqual({
      code: 400, err_code: 10025, description: "invalid JSON: consumer group not specified",
    });
    expect((await api(c.nc, "$JS.API.CONSUMER.UNPIN.S.C", { group: "B" })).error.err_code).toBe(10160);
    await server.stop();
  });

  natterOnly("pinned_client: a pin nobody asks with goes after priority_timeout", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await create(c.nc, { ...pinnedConfig, priority_timeout: 1 * SEC });
    const unpinned = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.C");
    await c.js.publish("s.a", "1");
    const first = pull(c.nc, "S", "C", { batch: 1, expires: 5 * SEC, group: "A" });
    await until(() => first.msgs.length === 1, 5_000, "the first delivery");
    await until(() => unpinned.length === 1, 5_000, "the timeout");
    expect(unpinned[0]).toMatchObject({ group: "A", reason: "timeout" });
    expect((await api(c.nc, "$JS.API.CONSUMER.INFO.S.C")).priority_groups).toEqual([{ group: "A", pinned_ts: "0001-01-01T00:00:00Z" }]);
    await server.stop();
  });

  natterOnly("overflow: min_pending and min_ack_pending hold a request back until the consumer is that far behind", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await create(c.nc, { durable_name: "O", ack_policy: "explicit", priority_groups: ["A"], priority_policy: "overflow" });
    for (let i = 0; i < 5; i++) await c.js.publish("s.a", String(i));
    // 5 pending: a request for at least 10 gets nothing.
    const idle = pull(c.nc, "S", "O", { batch: 5, expires: 1 * SEC, group: "A", min_pending: 10 });
    await until(() => idle.status !== "", 5_000, "the request to expire");
    expect([idle.status, idle.msgs.length]).toEqual(["408 Request Timeout", 0]);
    // At least 4 pending: served while 4 or more are left (5, then 4), then it waits.
    const standby = pull(c.nc, "S", "O", { batch: 5, expires: 1 * SEC, group: "A", min_pending: 4 });
    await until(() => standby.status !== "", 5_000, "the request to end");
    expect(standby.msgs.map((m) => dec(m.data))).toEqual(["0", "1"]);
    // Two unacknowledged: a request with min_ack_pending 2 is served.
    const byAcks = pull(c.nc, "S", "O", { batch: 1, expires: 1 * SEC, group: "A", min_ack_pending: 2 });
    await until(() => byAcks.msgs.length === 1, 5_000, "the min_ack_pending delivery");
    // No minimum: an ordinary request.
    const plain = pull(c.nc, "S", "O", { batch: 5, expires: 1 * SEC, group: "A" });
    await until(() => plain.msgs.length === 2, 5_000, "the rest");
    await server.stop();
  });

  natterOnly("@nats-io/jetstream's pinned consume (which it allows from 2.11.0): one of two clients gets everything", async () => {
    const server = await startJs();
    const a = await connectJs(server);
    const b = await connectJs(server);
    await a.jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await a.jsm.consumers.add("S", { durable_name: "C", ack_policy: "explicit", priority_groups: ["A"], priority_policy: "pinned_client" } as any);
    const got: Record<string, number> = { a: 0, b: 0 };
    const runs = await Promise.all(
      [["a", a], ["b", b]].map(async ([name, x]: any) => {
        const consumer = await x.js.consumers.get("S", "C");
        const messages = await consumer.consume({ group: "A", max_messages: 10, expires: 2_000 });
        (async () => {
          for await (const m of messages) {
            got[name]++;
            m.ack();
          }
        })();
        return messages;
      }),
    );
    for (let i = 0; i < 20; i++) await a.js.publish("s.a", String(i));
    await until(() => got.a + got.b === 20, 10_000, "all 20 messages");
    expect([got.a, got.b].sort((x, y) => x - y)).toEqual([0, 20]);
    for (const r of runs) r.stop();
    await server.stop();
  });
});
