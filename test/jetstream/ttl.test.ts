// Per-message TTL (`allow_msg_ttl`, `Nats-TTL`) and subject delete markers (`subject_delete_marker_ttl`),
// nats-server 2.11/2.12 features: 2.9.10 has none of them, so these run against natter only (shapes and
// errors checked against nats-server's source: stream.go, memstore.go/filestore.go expireMsgs, errors.json).
import { Kvm, type KvEntry } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { api, connectJs, dec, enc, startJs, until } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");
const SEC = 1_000_000_000;

/** A raw publish with headers: the PubAck as JSON. */
async function pub(c: Awaited<ReturnType<typeof connectJs>>, subject: string, hdrs: Record<string, string>, data = "x") {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  const m = await c.nc.request(subject, enc(data), { headers: h, timeout: 5_000 });
  return JSON.parse(dec(m.data));
}

describe("per-message TTL", () => {
  natterOnly("Nats-TTL needs allow_msg_ttl (10166); bad values are 10165; nothing is stored for either", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "PLAIN", subjects: ["plain.>"] });
    expect((await pub(c, "plain.a", { "Nats-TTL": "1s" })).error).toEqual({ code: 400, err_code: 10166, description: "per-message TTL is disabled" });
    expect((await pub(c, "plain.a", { "Nats-TTL": "never" })).error.err_code).toBe(10166);
    // An invalid value is 10165 even there (it never counts as a TTL).
    expect((await pub(c, "plain.a", { "Nats-TTL": "soon" })).error).toEqual({ code: 400, err_code: 10165, description: "invalid per-message TTL" });
    await c.jsm.streams.add({ name: "T", subjects: ["t.>"], allow_msg_ttl: true });
    for (const bad of ["500ms", "0", "0s", "-1", "-5s", "1x", "soon"]) {
      expect((await pub(c, "t.a", { "Nats-TTL": bad })).error, bad).toEqual({ code: 400, err_code: 10165, description: "invalid per-message TTL" });
    }
    for (const good of ["1h", "30", "never", "NEVER", "1m30s", "1.5s"]) expect((await pub(c, "t.a", { "Nats-TTL": good })).error, good).toBeUndefined();
    expect((await c.jsm.streams.info("PLAIN")).state.messages).toBe(0);
    expect((await c.jsm.streams.info("T")).state.messages).toBe(6);
    // The stored message keeps its header.
    const m = await c.jsm.streams.getMessage("T", { seq: 1 });
    expect(m!.header.get("Nats-TTL")).toBe("1h");
    await server.stop();
  });

  natterOnly("a message goes when its TTL runs out; `never` outlives max_age; others stay", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "T", subjects: ["t.>"], allow_msg_ttl: true, max_age: 2 * SEC });
    const sent = Date.now();
    await c.js.publish("t.short", "a", { ttl: "1s" });
    await c.js.publish("t.never", "b", { ttl: "never" });
    await c.js.publish("t.plain", "c");
    await until(async () => (await c.jsm.streams.info("T")).state.messages === 2, 5_000, "the 1s message to go");
    expect(Date.now() - sent).toBeGreaterThanOrEqual(900);
    expect((await c.jsm.streams.getMessage("T", { last_by_subj: "t.short" }).catch(() => null))).toBeNull();
    // max_age (2 s) takes the plain message but not the `never` one.
    await until(async () => (await c.jsm.streams.info("T")).state.messages === 1, 6_000, "max_age to take t.plain");
    const left = await c.jsm.streams.getMessage("T", { last_by_subj: "t.never" });
    expect(dec(left!.data)).toBe("b");
    await server.stop();
  });

  natterOnly("TTLs survive a restart (file store)", async () => {
    const server = await startJs();
    let c = await connectJs(server);
    await c.jsm.streams.add({ name: "T", subjects: ["t.>"], allow_msg_ttl: true });
    await c.js.publish("t.a", "a", { ttl: "2s" });
    await c.js.publish("t.b", "b");
    await c.nc.close();
    await server.restart();
    c = await connectJs(server);
    expect((await c.jsm.streams.info("T")).state.messages).toBe(2);
    await until(async () => (await c.jsm.streams.info("T")).state.messages === 1, 8_000, "t.a to expire after the restart");
    expect(dec((await c.jsm.streams.getMessage("T", { seq: 2 }))!.data)).toBe("b");
    await server.stop();
  });
});

describe("subject delete markers", () => {
  natterOnly("config: at least 1 s, not negative; it turns on allow_msg_ttl and roll-ups; TTLs can not be turned off", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const create = (cfg: Record<string, unknown>) => api(c.nc, `$JS.API.STREAM.CREATE.${cfg.name}`, cfg);
    expect((await create({ name: "S", subject_delete_marker_ttl: SEC / 2 })).error).toEqual({
      code: 500, err_code: 10052, description: "subject delete marker TTL must be at least 1 second",
    });
    expect((await create({ name: "S", subject_delete_marker_ttl: -1 })).error.description).toBe("subject delete marker TTL must not be negative");
    const ok = await create({ name: "S", subject_delete_marker_ttl: SEC, deny_purge: false });
    expect(ok.config).toMatchObject({ allow_msg_ttl: true, allow_rollup_hdrs: true, deny_purge: false, subject_delete_marker_ttl: SEC });
    const off = await api(c.nc, "$JS.API.STREAM.UPDATE.S", { ...ok.config, allow_msg_ttl: false, subject_delete_marker_ttl: 0 });
    expect(off.error).toEqual({ code: 500, err_code: 10052, description: "message TTL status can not be disabled" });
    await server.stop();
  });

  natterOnly("the last message of a subject that ages out (max_age or its TTL) leaves a marker, which expires in turn", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "M", subjects: ["m.>"], max_age: 1 * SEC, subject_delete_marker_ttl: 1 * SEC });
    const seen: { subject: string; seq: number; headers: Record<string, string> }[] = [];
    const consumer = await c.js.consumers.get("M"); // an ordered consumer: what a watcher sees
    const messages = await consumer.consume();
    (async () => {
      for await (const m of messages) {
        const h: Record<string, string> = {};
        for (const k of m.headers?.keys() ?? []) h[k] = m.headers!.get(k);
        seen.push({ subject: m.subject, seq: m.seq, headers: h });
      }
    })();
    await c.js.publish("m.a", "1");
    await c.js.publish("m.a", "2");
    await c.js.publish("m.b", "3", { ttl: "5s" }); // its TTL is longer than max_age: max_age takes it first
    await until(() => seen.filter((s) => s.headers["Nats-Marker-Reason"]).length === 2, 8_000, "two markers");
    const markers = seen.filter((s) => s.headers["Nats-Marker-Reason"]);
    // One marker per subject (m.a's first message left none: it was not the last), as nats-server writes it.
    expect(markers.map((m) => [m.subject, m.seq])).toEqual([["m.a", 4], ["m.b", 5]]);
    expect(markers[0]!.headers).toEqual({ "Nats-Marker-Reason": "MaxAge", "Nats-TTL": "1s", "Nats-Rollup": "sub" });
    // The markers go after their own TTL and leave nothing behind.
    await until(async () => (await c.jsm.streams.info("M")).state.messages === 0, 8_000, "the markers to expire");
    expect((await c.jsm.streams.info("M")).state.last_seq).toBe(5);
    messages.stop();
    await server.stop();
  });

  natterOnly("a per-message TTL shorter than the marker TTL is raised to it (unless max_msgs_per_subject is 1)", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "R", subjects: ["r.>"], subject_delete_marker_ttl: 5 * SEC });
    await c.js.publish("r.a", "x", { ttl: "1s" });
    expect((await c.jsm.streams.getMessage("R", { seq: 1 }))!.header.get("Nats-TTL")).toBe("5");
    await server.stop();
  });
});

describe("kv on TTLs (@nats-io/kv markerTTL, per-key TTL)", () => {
  natterOnly("a key created with a TTL disappears after it; watchers see the marker; create works again", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const kv = await new Kvm(c.nc).create("ttl", { markerTTL: 1_000 });
    expect((await c.jsm.streams.info("KV_ttl")).config).toMatchObject({ allow_msg_ttl: true, subject_delete_marker_ttl: SEC });
    const seen: KvEntry[] = [];
    const watch = await kv.watch({ key: "k" });
    (async () => {
      for await (const e of watch) seen.push(e);
    })();
    expect(await kv.create("k", "v", "1s")).toBe(1);
    expect((await kv.get("k"))!.string()).toBe("v");
    await until(() => seen.some((e) => e.operation === "PURGE"), 8_000, "the watcher to see the marker");
    expect(seen.map((e) => [e.key, e.operation, e.revision])).toEqual([["k", "PUT", 1], ["k", "PURGE", 2]]);
    const gone = await kv.get("k");
    expect(gone === null || gone.operation === "PURGE").toBe(true);
    // The key can be created again (over the marker, or once the marker went too).
    expect(await kv.create("k", "again")).toBeGreaterThan(2);
    watch.stop();
    await server.stop();
  });

  natterOnly("purge with a TTL: the purge marker goes after it, leaving the key empty", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const kv = await new Kvm(c.nc).create("p", { markerTTL: 1_000 });
    await kv.put("k", "v");
    await kv.purge("k", { ttl: "1s" });
    expect((await c.jsm.streams.info("KV_p")).state.messages).toBe(1);
    await until(async () => (await c.jsm.streams.info("KV_p")).state.messages === 0, 8_000, "the purge marker to expire");
    expect(await kv.get("k")).toBeNull();
    await server.stop();
  });
});
