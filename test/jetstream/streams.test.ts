// Streams through the official @nats-io/jetstream client and the raw API, against the real server
// process (natter by default; NATTER_TEST_SERVER=nats-server runs the same assertions on nats-server).
import { headers } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { startServer } from "../harness/server.ts";
import { connectV3 } from "../harness/clients.ts";
import { api, connectJs, dec, enc, startJs } from "./helpers.ts";

describe("enabling", () => {
  test("without JetStream, API requests get no responders; INFO has no jetstream flag", async () => {
    const server = await startServer();
    const nc = await connectV3(server);
    expect((nc as any).info?.jetstream).toBeFalsy();
    await expect(nc.request("$JS.API.INFO", new Uint8Array(), { timeout: 2_000 })).rejects.toThrow(/no responders|503/i);
  });

  test("with JetStream, INFO says so and $JS.API.INFO answers with account usage and limits", async () => {
    const server = await startJs();
    const { nc, jsm } = await connectJs(server);
    expect((nc as any).info.jetstream).toBe(true);
    const info = await api(nc, "$JS.API.INFO");
    expect(info.type).toBe("io.nats.jetstream.api.v1.account_info_response");
    expect(info).toMatchObject({ memory: 0, storage: 0, streams: 0, consumers: 0 });
    expect(info.limits).toMatchObject({ max_memory: -1, max_storage: -1, max_streams: -1, max_consumers: -1 });
    const ai = await jsm.getAccountInfo();
    expect(ai.streams).toBe(0);
  });
});

describe("streams", () => {
  test("create, info, publish acks, dedupe, names, list, update, delete", async () => {
    const server = await startJs();
    const { nc, js, jsm } = await connectJs(server);
    const si = await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    expect(si.config).toMatchObject({
      name: "ORDERS", subjects: ["orders.>"], retention: "limits", max_msgs: -1, max_bytes: -1, max_age: 0,
      max_msgs_per_subject: -1, max_msg_size: -1, discard: "old", storage: "file", num_replicas: 1,
      duplicate_window: 120_000_000_000,
    });
    expect(si.state).toMatchObject({ messages: 0, bytes: 0, first_seq: 0, last_seq: 0, consumer_count: 0 });

    const a1 = await js.publish("orders.new", enc("one"));
    expect(a1).toMatchObject({ stream: "ORDERS", seq: 1, duplicate: false });
    const a2 = await js.publish("orders.new", enc("two"), { msgID: "m-2" });
    const dup = await js.publish("orders.new", enc("two again"), { msgID: "m-2" });
    expect(a2.seq).toBe(2);
    expect(dup).toMatchObject({ seq: 2, duplicate: true });
    // The raw PubAck, byte for byte as nats-server writes it.
    const raw = await nc.request("orders.raw", enc("x"), { timeout: 5_000 });
    expect(dec(raw.data)).toBe('{"stream":"ORDERS", "seq":3}');

    const info = await jsm.streams.info("ORDERS");
    expect(info.state).toMatchObject({ messages: 3, first_seq: 1, last_seq: 3, num_subjects: 2, consumer_count: 0 });
    // file store accounting: 22 + subject + data + 8 (+ 4 + headers when there are headers)
    const size = (subject: string, hdr: string, data: string) => 22 + subject.length + data.length + 8 + (hdr ? 4 + hdr.length : 0);
    expect(info.state.bytes).toBe(
      size("orders.new", "", "one") + size("orders.new", "NATS/1.0\r\nNats-Msg-Id: m-2\r\n\r\n", "two") + size("orders.raw", "", "x"),
    );

    await jsm.streams.add({ name: "OTHER", subjects: ["other.*"], storage: "memory" as never });
    const names: string[] = [];
    for await (const n of jsm.streams.names()) names.push(n);
    expect(names.sort()).toEqual(["ORDERS", "OTHER"]);
    const listed: string[] = [];
    for await (const s of jsm.streams.list()) listed.push(s.config.name);
    expect(listed.sort()).toEqual(["ORDERS", "OTHER"]);
    const bySubject: string[] = [];
    for await (const n of jsm.streams.names("other.x")) bySubject.push(n);
    expect(bySubject).toEqual(["OTHER"]);

    const updated = await jsm.streams.update("ORDERS", { max_msgs: 2 });
    expect(updated.config.max_msgs).toBe(2);
    expect(updated.state).toMatchObject({ messages: 2, first_seq: 2, last_seq: 3 });

    expect(await jsm.streams.delete("OTHER")).toBe(true);
    await expect(jsm.streams.info("OTHER")).rejects.toThrow(/stream not found/);
  });

  test("errors are nats-server's JSON: not found, name in use, overlap, bad JSON, bad names", async () => {
    const server = await startJs();
    const { nc } = await connectJs(server);
    const err = (r: Record<string, any>) => r.error;
    expect(err(await api(nc, "$JS.API.STREAM.INFO.NOPE"))).toEqual({ code: 404, err_code: 10059, description: "stream not found" });
    await api(nc, "$JS.API.STREAM.CREATE.A", { name: "A", subjects: ["a.>"] });
    expect(err(await api(nc, "$JS.API.STREAM.CREATE.A", { name: "A", subjects: ["b.>"] }))).toEqual({
      code: 400, err_code: 10058, description: "stream name already in use with a different configuration",
    });
    expect(err(await api(nc, "$JS.API.STREAM.CREATE.B", { name: "B", subjects: ["a.x"] }))).toEqual({
      code: 400, err_code: 10065, description: "subjects overlap with an existing stream",
    });
    expect(err(await api(nc, "$JS.API.STREAM.CREATE.B", "{bad"))).toEqual({ code: 400, err_code: 10025, description: "invalid JSON" });
    expect(err(await api(nc, "$JS.API.STREAM.CREATE.B", { name: "C" }))).toEqual({
      code: 400, err_code: 10056, description: "stream name in subject does not match request",
    });
    expect(err(await api(nc, "$JS.API.STREAM.CREATE.B", { name: "B", subjects: ["b.>"], max_age: 1000 }))).toEqual({
      code: 500, err_code: 10052, description: "max age needs to be >= 100ms",
    });
    // The same config again is fine and changes nothing.
    const again = await api(nc, "$JS.API.STREAM.CREATE.A", { name: "A", subjects: ["a.>"] });
    expect(again.config.name).toBe("A");
    const names = await api(nc, "$JS.API.STREAM.NAMES");
    expect(names.streams).toEqual(["A"]);
  });

  test("expected-* headers and their errors", async () => {
    const server = await startJs();
    const { nc, js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "E", subjects: ["e.>"] });
    await expect(js.publish("e.a", enc("1"), { expect: { streamName: "X" } })).rejects.toThrow(/expected stream does not match/);
    await expect(js.publish("e.a", enc("1"), { expect: { lastSequence: 5 } })).rejects.toThrow(/wrong last sequence: 0/);
    expect((await js.publish("e.a", enc("1"), { expect: { lastSequence: 0, streamName: "E" }, msgID: "id-1" })).seq).toBe(1);
    expect((await js.publish("e.b", enc("2"), { expect: { lastSubjectSequence: 0 } })).seq).toBe(2);
    await expect(js.publish("e.b", enc("3"), { expect: { lastSubjectSequence: 0 } })).rejects.toThrow(/wrong last sequence: 2/);
    expect((await js.publish("e.b", enc("3"), { expect: { lastSubjectSequence: 2 } })).seq).toBe(3);
    await expect(js.publish("e.c", enc("4"), { expect: { lastMsgID: "nope" } })).rejects.toThrow(/wrong last msg ID: /);
    const h = headers();
    h.set("Nats-Expected-Last-Sequence", "1");
    const r = await nc.request("e.c", enc("x"), { headers: h, timeout: 5_000 });
    expect(JSON.parse(dec(r.data))).toEqual({ error: { code: 400, err_code: 10071, description: "wrong last sequence: 3" }, stream: "E", seq: 0 });
  });

  test("limits: max_msgs_per_subject, max_msg_size, discard new", async () => {
    const server = await startJs();
    const { js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "L", subjects: ["l.>"], max_msgs_per_subject: 2, max_msg_size: 10 });
    for (let i = 0; i < 5; i++) await js.publish("l.k", enc(`v${i}`));
    let info = await jsm.streams.info("L");
    expect(info.state).toMatchObject({ messages: 2, first_seq: 4, last_seq: 5 });
    await expect(js.publish("l.k", enc("01234567890"))).rejects.toThrow(/message size exceeds maximum allowed/);
    await jsm.streams.add({ name: "N", subjects: ["n.>"], max_msgs: 2, discard: "new" as never });
    await js.publish("n.a", enc("1"));
    await js.publish("n.a", enc("2"));
    await expect(js.publish("n.a", enc("3"))).rejects.toThrow(/maximum messages exceeded/);
    info = await jsm.streams.info("N");
    expect(info.state).toMatchObject({ messages: 2, last_seq: 2 });
  });

  test("subject details are paged as nats-server pages them: sorted, total, offset, limit 100000", async () => {
    const server = await startJs();
    const { nc, js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "SUBJ", subjects: ["subj.>"] });
    for (const s of ["e", "c", "a", "d", "b", "a"]) await js.publish(`subj.${s}`, enc(s));
    const page = await api(nc, "$JS.API.STREAM.INFO.SUBJ", { subjects_filter: ">", offset: 2 });
    expect(page).toMatchObject({ total: 5, offset: 2, limit: 100_000 });
    expect(page.state.subjects).toEqual({ "subj.c": 1, "subj.d": 1, "subj.e": 1 });
    const past = await api(nc, "$JS.API.STREAM.INFO.SUBJ", { subjects_filter: "subj.*", offset: 9 });
    expect(past).toMatchObject({ total: 5, offset: 5, limit: 100_000 });
    expect(past.state.subjects).toBeUndefined();
    const none = await api(nc, "$JS.API.STREAM.INFO.SUBJ", { subjects_filter: "other" });
    expect(none).toMatchObject({ total: 0, offset: 0, limit: 0 });
    // The client pages through them.
    expect((await jsm.streams.info("SUBJ", { subjects_filter: ">" })).state.subjects).toEqual({ "subj.a": 2, "subj.b": 1, "subj.c": 1, "subj.d": 1, "subj.e": 1 });
  });

  test("purge: all, by subject, keep, up to a sequence; the sequence goes on", async () => {
    const server = await startJs();
    const { js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "P", subjects: ["p.>"] });
    for (let i = 1; i <= 10; i++) await js.publish(`p.${i % 2 ? "odd" : "even"}`, enc(String(i)));
    expect(await jsm.streams.purge("P", { filter: "p.even", keep: 1 })).toMatchObject({ success: true, purged: 4 });
    expect(await jsm.streams.purge("P", { seq: 5 })).toMatchObject({ success: true, purged: 2 });
    expect(await jsm.streams.purge("P", { keep: 2 })).toMatchObject({ success: true, purged: 2 });
    const left = await jsm.streams.info("P");
    expect(left.state).toMatchObject({ messages: 2, first_seq: 9, last_seq: 10 });
    expect(await jsm.streams.purge("P")).toMatchObject({ success: true, purged: 2 });
    const empty = await jsm.streams.info("P");
    expect(empty.state).toMatchObject({ messages: 0, first_seq: 11, last_seq: 10 });
    expect((await js.publish("p.odd", enc("11"))).seq).toBe(11);
  });

  test("message get, delete, direct get (by sequence and last by subject), rollup", async () => {
    const server = await startJs();
    const { nc, js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "G", subjects: ["g.>"], allow_direct: true, allow_rollup_hdrs: true });
    const h = headers();
    h.set("X-Id", "7");
    await js.publish("g.a", enc("first"), { headers: h });
    await js.publish("g.b", enc("second"));
    await js.publish("g.a", enc("third"));
    const m1 = await jsm.streams.getMessage("G", { seq: 1 });
    expect(m1).not.toBeNull();
    expect(m1!.subject).toBe("g.a");
    expect(m1!.header.get("X-Id")).toBe("7");
    expect(dec(m1!.data)).toBe("first");
    const last = await jsm.streams.getMessage("G", { last_by_subj: "g.a" });
    expect(last!.seq).toBe(3);
    const raw = await api(nc, "$JS.API.STREAM.MSG.GET.G", { seq: 99 });
    expect(raw.error).toEqual({ code: 404, err_code: 10037, description: "no message found" });

    const direct = await nc.request("$JS.API.DIRECT.GET.G", enc(JSON.stringify({ seq: 2 })), { timeout: 5_000 });
    expect(direct.headers!.get("Nats-Stream")).toBe("G");
    expect(direct.headers!.get("Nats-Subject")).toBe("g.b");
    expect(direct.headers!.get("Nats-Sequence")).toBe("2");
    expect(direct.headers!.get("Nats-Time-Stamp")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(dec(direct.data)).toBe("second");
    const lastDirect = await nc.request("$JS.API.DIRECT.GET.G.g.a", new Uint8Array(), { timeout: 5_000 });
    expect(lastDirect.headers!.get("Nats-Sequence")).toBe("3");
    const missing = await nc.request("$JS.API.DIRECT.GET.G", enc(JSON.stringify({ seq: 99 })), { timeout: 5_000 });
    expect(missing.headers!.code).toBe(404);
    expect(missing.headers!.description).toBe("Message Not Found");

    expect(await jsm.streams.deleteMessage("G", 2)).toBe(true);
    await expect(jsm.streams.deleteMessage("G", 2)).rejects.toThrow(/sequence 2 not found/);
    expect((await api(nc, "$JS.API.STREAM.MSG.DELETE.G", { seq: 99 })).error).toEqual({ code: 500, err_code: 10057, description: "stream store EOF" });
    const info = await jsm.streams.info("G");
    expect(info.state).toMatchObject({ messages: 2, first_seq: 1, last_seq: 3, num_deleted: 1 });

    const rh = headers();
    rh.set("Nats-Rollup", "all");
    await js.publish("g.c", enc("rolled"), { headers: rh });
    const after = await jsm.streams.info("G");
    expect(after.state).toMatchObject({ messages: 1, first_seq: 4, last_seq: 4 });
  });

  test("streams survive a restart: config, messages, sequence, dedupe", async () => {
    const server = await startJs();
    let { js, jsm } = await connectJs(server, { reconnect: false });
    await jsm.streams.add({ name: "R", subjects: ["r.>"], max_msgs_per_subject: 3 });
    for (let i = 1; i <= 5; i++) await js.publish("r.x", enc(`m${i}`), { msgID: `id-${i}` });
    await js.publish("r.y", enc("y"));
    await jsm.streams.deleteMessage("R", 4);
    await server.restart();
    ({ js, jsm } = await connectJs(server));
    const info = await jsm.streams.info("R");
    expect(info.config.max_msgs_per_subject).toBe(3);
    expect(info.state).toMatchObject({ messages: 3, first_seq: 3, last_seq: 6, num_subjects: 2 });
    expect(dec((await jsm.streams.getMessage("R", { seq: 5 }))!.data)).toBe("m5");
    const dup = await js.publish("r.x", enc("again"), { msgID: "id-5" });
    expect(dup).toMatchObject({ seq: 5, duplicate: true });
    expect((await js.publish("r.x", enc("m7"))).seq).toBe(7);
  });

  test("a purge or first_seq past 2^53 - 1 is refused as invalid JSON, and the stream goes on numbering and purging", async () => {
    // A purge up to 2^63 once set the last sequence where seq + 1 === seq: later messages shared one sequence and the
    // next purge of all never ended (the fuzzer, seed d9defa3526b1bf75).
    const server = await startJs();
    const { nc, js } = await connectJs(server);
    await api(nc, "$JS.API.STREAM.CREATE.BIG", { name: "BIG", subjects: ["big.>"] });
    await js.publish("big.a", enc("1"));
    const invalid = { code: 400, err_code: 10025, description: "invalid JSON" };
    for (const body of ['{"seq":9223372036854776000}', '{"seq":9007199254740992}', '{"keep":1e300}', '{"seq":-1}', '{"seq":1.5}']) {
      expect((await api(nc, "$JS.API.STREAM.PURGE.BIG", body)).error, body).toEqual(invalid);
    }
    expect((await api(nc, "$JS.API.STREAM.CREATE.BIG2", { name: "BIG2", subjects: ["big2.>"], first_seq: 1e300 })).error).toEqual(invalid);
    // The largest exact sequence is still taken, and numbering goes on from it.
    expect((await api(nc, "$JS.API.STREAM.PURGE.BIG", '{"seq":9007199254740990}')).success).toBe(true);
    expect((await js.publish("big.b", enc("2"))).seq).toBe(9007199254740990);
    expect((await js.publish("big.c", enc("3"))).seq).toBe(9007199254740991);
    expect(await api(nc, "$JS.API.STREAM.PURGE.BIG")).toMatchObject({ success: true, purged: 2 });
  });

  test("sealed, deny_delete and deny_purge refuse what they say", async () => {
    const server = await startJs();
    const { nc, js, jsm } = await connectJs(server);
    await jsm.streams.add({ name: "D", subjects: ["d.>"], deny_delete: true, deny_purge: true });
    await js.publish("d.a", enc("1"));
    expect((await api(nc, "$JS.API.STREAM.MSG.DELETE.D", { seq: 1 })).error).toEqual({ code: 500, err_code: 10057, description: "message delete not permitted" });
    expect((await api(nc, "$JS.API.STREAM.PURGE.D")).error).toEqual({ code: 500, err_code: 10110, description: "stream purge not permitted" });
    const undeny = await api(nc, "$JS.API.STREAM.UPDATE.D", { name: "D", subjects: ["d.>"], deny_delete: false, deny_purge: true });
    expect(undeny.error).toEqual({ code: 500, err_code: 10052, description: "stream configuration update can not cancel deny message deletes" });
    await jsm.streams.update("D", { sealed: true } as never);
    await expect(js.publish("d.a", enc("2"))).rejects.toThrow(/invalid operation on sealed stream/);
    expect((await jsm.streams.info("D")).state.messages).toBe(1);
  });
});
