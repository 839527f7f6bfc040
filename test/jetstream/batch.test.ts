// Atomic batch publish (nats-server 2.12, `allow_atomic`): 2.9.10 has none of it, so these run against natter
// only (errors, PubAck and advisory shapes checked against nats-server's source: stream.go
// processJetStreamAtomicBatchMsg, jetstream_batching.go, errors.json). @nats-io/jetstream 3.x has the batch
// publisher (js.startBatch / add / commit), used where it fits; raw publishes for the error cases.
import type { MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { collectJson, connectJs, dec, enc, startJs, until } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");

function hdrs(values: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}

/** A raw publish with headers: the reply's payload as text ("" for the empty reply of a staged batch message). */
async function pubRaw(nc: NatsConnection, subject: string, values: Record<string, string>, data = "x"): Promise<string> {
  const m = await nc.request(subject, enc(data), { headers: hdrs(values), timeout: 5_000 });
  return dec(m.data);
}

const batchMsg = (id: string, seq: number, extra: Record<string, string> = {}) => ({ "Nats-Batch-Id": id, "Nats-Batch-Sequence": String(seq), ...extra });

describe("atomic batch publish", () => {
  natterOnly("the client's batch publisher: nothing is visible before the commit, then all of it; the commit's PubAck names the batch", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    expect((await c.jsm.streams.info("B")).config).toMatchObject({ allow_atomic: true });
    const seen: string[] = [];
    const messages = await (await c.js.consumers.get("B")).consume();
    (async () => {
      for await (const m of messages) seen.push(dec(m.data));
    })();
    const batch = await c.js.startBatch("b.orders", "order-1");
    batch.add("b.outbox", "event-1");
    await batch.add("b.outbox", "event-2", { ack: true }); // acked: staged, not stored
    expect((await c.jsm.streams.info("B")).state.messages).toBe(0); // nothing stored: nothing a consumer could see
    expect(seen).toEqual([]);
    const ack = await batch.commit("b.outbox", "event-3");
    expect(ack).toMatchObject({ stream: "B", seq: 4, batch: batch.id, count: 4 });
    await until(() => seen.length === 4, 5_000, "the whole batch");
    expect(seen).toEqual(["order-1", "event-1", "event-2", "event-3"]);
    const last = await c.jsm.streams.getMessage("B", { seq: 4 });
    expect([last!.header.get("Nats-Batch-Id"), last!.header.get("Nats-Batch-Sequence"), last!.header.get("Nats-Batch-Commit")]).toEqual([batch.id, "4", "1"]);
    messages.stop();
    await server.stop();
  });

  natterOnly("errors, as nats-server 2.12 answers them; a failed batch stores nothing", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const nc = c.nc;
    await c.jsm.streams.add({ name: "PLAIN", subjects: ["plain.>"] });
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    const abandoned = collectJson(nc, "$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.B");
    await nc.flush();
    const err = async (subject: string, values: Record<string, string>) => JSON.parse(await pubRaw(nc, subject, values)).error;
    expect(await err("plain.a", batchMsg("x", 1))).toEqual({ code: 400, err_code: 10174, description: "atomic publish is disabled" });
    expect(await err("b.a", { "Nats-Batch-Id": "x" })).toEqual({ code: 400, err_code: 10175, description: "atomic publish sequence is missing" });
    expect(await err("b.a", batchMsg("x".repeat(65), 1))).toEqual({ code: 400, err_code: 10179, description: "atomic publish batch ID is invalid" });
    expect(await err("b.a", batchMsg("late", 2))).toEqual({ code: 400, err_code: 10176, description: "atomic publish batch is incomplete" });
    expect(await err("b.a", batchMsg("huge", 1001))).toEqual({ code: 400, err_code: 10199, description: "atomic publish batch is too large: 1000" });
    // A staged message gets an empty reply.
    expect(await pubRaw(nc, "b.a", batchMsg("gap", 1))).toBe("");
    expect(await err("b.a", batchMsg("gap", 3))).toEqual({ code: 400, err_code: 10176, description: "atomic publish batch is incomplete" });
    await until(() => abandoned.length === 1, 5_000, "the abandoned advisory");
    expect(abandoned[0]).toMatchObject({ type: "io.nats.jetstream.advisory.v1.stream_batch_abandoned", stream: "B", batch: "gap", reason: "incomplete" });
    // The batch is gone: its commit is incomplete too.
    expect(await err("b.a", batchMsg("gap", 2, { "Nats-Batch-Commit": "1" }))).toMatchObject({ err_code: 10176 });
    expect(await pubRaw(nc, "b.a", batchMsg("bad-commit", 1))).toBe("");
    expect(await err("b.a", batchMsg("bad-commit", 2, { "Nats-Batch-Commit": "yes" }))).toEqual({
      code: 400, err_code: 10200, description: "atomic publish batch commit is invalid",
    });
    // Checks at the commit: a duplicate Msg-Id (in the batch or the window), Expected-Last-Msg-Id.
    expect(await pubRaw(nc, "b.a", batchMsg("dup", 1, { "Nats-Msg-Id": "m1" }))).toBe("");
    expect(await err("b.a", batchMsg("dup", 2, { "Nats-Msg-Id": "m1", "Nats-Batch-Commit": "1" }))).toEqual({
      code: 400, err_code: 10201, description: "atomic publish batch contains duplicate message id",
    });
    expect(await err("b.a", batchMsg("elmi", 1, { "Nats-Expected-Last-Msg-Id": "z", "Nats-Batch-Commit": "1" }))).toEqual({
      code: 400, err_code: 10177, description: "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id",
    });
    expect((await c.jsm.streams.info("B")).state.messages).toBe(0);
    // Expected-Last-Subject-Sequence counts the batch's own earlier messages; the stored copies keep their headers.
    await pubRaw(nc, "b.k", batchMsg("cas", 1, { "Nats-Expected-Last-Subject-Sequence": "0" }));
    const ok = JSON.parse(await pubRaw(nc, "b.k", batchMsg("cas", 2, { "Nats-Expected-Last-Subject-Sequence": "1", "Nats-Batch-Commit": "1" })));
    expect(ok).toEqual({ stream: "B", seq: 2, batch: "cas", count: 2 });
    // A batch holding a Msg-Id already in the window is refused whole (a retried outbox batch is not stored twice).
    await pubRaw(nc, "b.a", batchMsg("once", 1, { "Nats-Msg-Id": "order-7" }));
    expect(JSON.parse(await pubRaw(nc, "b.a", batchMsg("once", 2, { "Nats-Batch-Commit": "1" }))).count).toBe(2);
    await pubRaw(nc, "b.a", batchMsg("again", 1, { "Nats-Msg-Id": "order-7" }));
    expect(await err("b.a", batchMsg("again", 2, { "Nats-Batch-Commit": "1" }))).toMatchObject({ err_code: 10201 });
    expect((await c.jsm.streams.info("B")).state.messages).toBe(4);
    // Discard new: the whole batch must fit.
    await c.jsm.streams.add({ name: "SMALL", subjects: ["small.>"], allow_atomic: true, discard: "new", max_msgs: 2 } as any);
    await pubRaw(nc, "small.a", batchMsg("fit", 1));
    await pubRaw(nc, "small.a", batchMsg("fit", 2));
    expect(await err("small.a", batchMsg("fit", 3, { "Nats-Batch-Commit": "1" }))).toEqual({ code: 503, err_code: 10077, description: "maximum messages exceeded" });
    expect((await c.jsm.streams.info("SMALL")).state.messages).toBe(0);
    await server.stop();
  });

  natterOnly("the README's outbox relay: a change's rows go as one batch; publishing them again stores nothing (10201)", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const { nc, js, jsm } = c;
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"], allow_atomic: true, duplicate_window: 10 * 60e9 } as any);
    // As in README.md, "The outbox pattern".
    const withId = (id: string) => {
      const h = natsHeaders();
      h.set("Nats-Msg-Id", id);
      return h;
    };
    type Row = { id: string; subject: string; payload: string };
    async function publishChange(rows: Row[]): Promise<"stored" | "already stored"> {
      const [first, ...more] = rows;
      const last = more.pop()!;
      const batch = await js.startBatch(first!.subject, first!.payload, { headers: withId(first!.id) });
      for (const row of more) batch.add(row.subject, row.payload, { headers: withId(row.id) });
      const h = withId(last.id);
      h.set("Nats-Batch-Id", batch.id);
      h.set("Nats-Batch-Sequence", String(rows.length));
      h.set("Nats-Batch-Commit", "1");
      const ack = JSON.parse(dec((await nc.request(last.subject, enc(last.payload), { headers: h, timeout: 5_000 })).data));
      if (ack.error?.err_code === 10201) return "already stored";
      if (ack.error) throw new Error(ack.error.description);
      return "stored";
    }
    const rows = [
      { id: "o-1:created", subject: "orders.created", payload: "order 1" },
      { id: "o-1:reserved", subject: "orders.stock", payload: "2 items" },
      { id: "o-1:mail", subject: "orders.mail", payload: "confirmation" },
    ];
    expect(await publishChange(rows)).toBe("stored");
    expect(await publishChange(rows)).toBe("already stored");
    expect((await jsm.streams.info("ORDERS")).state.messages).toBe(3);
    await server.stop();
  });

  natterOnly("`eob` ends a batch without storing the commit message itself", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    await pubRaw(c.nc, "b.a", batchMsg("e", 1), "one");
    await pubRaw(c.nc, "b.a", batchMsg("e", 2), "two");
    expect(JSON.parse(await pubRaw(c.nc, "b.a", batchMsg("e", 3, { "Nats-Batch-Commit": "eob" }), ""))).toEqual({ stream: "B", seq: 2, batch: "e", count: 2 });
    const last = await c.jsm.streams.getMessage("B", { seq: 2 });
    expect([dec(last!.data), last!.header.get("Nats-Batch-Commit")]).toEqual(["two", "1"]);
    await server.stop();
  });

  natterOnly("limits by default: 50 open batches a stream, the 51st refused (10210)", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    for (let i = 0; i < 50; i++) expect(await pubRaw(c.nc, "b.a", batchMsg(`open-${i}`, 1))).toBe("");
    expect(JSON.parse(await pubRaw(c.nc, "b.a", batchMsg("one-too-many", 1))).error).toEqual({
      code: 429, err_code: 10210, description: "atomic publish too many inflight",
    });
    await server.stop();
  });

  natterOnly("limits from jetstream { limits { batch {} } } (nats-server 2.12's): open batches, size, and the idle timeout (advisory, reason timeout)", async () => {
    const server = await startJs({ config: `jetstream { limits { batch { max_inflight_per_stream: 3, max_msgs: 2, timeout: "400ms" } } }\n` });
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    const abandoned = collectJson(c.nc, "$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.B");
    for (let i = 0; i < 3; i++) expect(await pubRaw(c.nc, "b.a", batchMsg(`open-${i}`, 1))).toBe("");
    expect(JSON.parse(await pubRaw(c.nc, "b.a", batchMsg("one-too-many", 1))).error.err_code).toBe(10210);
    // A third message is past max_msgs 2.
    expect(await pubRaw(c.nc, "b.a", batchMsg("open-0", 2))).toBe("");
    expect(JSON.parse(await pubRaw(c.nc, "b.a", batchMsg("open-0", 3))).error).toEqual({ code: 400, err_code: 10199, description: "atomic publish batch is too large: 2" });
    // The other two hear nothing for 400 ms: abandoned.
    await until(() => abandoned.filter((a) => a.reason === "timeout").length === 2, 10_000, "2 timeouts");
    expect(JSON.parse(await pubRaw(c.nc, "b.a", batchMsg("open-1", 2, { "Nats-Batch-Commit": "1" }))).error.err_code).toBe(10176);
    expect(await pubRaw(c.nc, "b.a", batchMsg("after", 1))).toBe("");
    await server.stop();
  });

  natterOnly("open batches hold at most 256 MiB in the process (natter's cap: it stages them in memory): past it, 10023", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true } as any);
    const abandoned = collectJson(c.nc, "$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.B");
    const mb = new Uint8Array(1024 * 1024 - 200);
    let refused: Record<string, any> | null = null;
    let i = 1;
    for (; i <= 300 && refused === null; i++) {
      const r = await c.nc.request("b.big", mb, { headers: hdrs(batchMsg("big", i)), timeout: 10_000 });
      if (r.data.length > 0) refused = JSON.parse(dec(r.data));
    }
    expect(i).toBeGreaterThan(250); // about 256 messages of nearly 1 MiB went in first
    expect(refused!.error).toEqual({ code: 503, err_code: 10023, description: "insufficient resources" });
    await until(() => abandoned.length === 1, 5_000, "the advisory");
    expect(abandoned[0]).toMatchObject({ batch: "big", reason: "large" });
    // The memory is free again: a new batch goes in.
    expect(await pubRaw(c.nc, "b.a", batchMsg("next", 1))).toBe("");
    await server.stop();
  }, 60_000);

  natterOnly("a committed batch whose commit message went later (acked on a work queue) is kept at a restart", async () => {
    const server = await startJs();
    let c = await connectJs(server);
    await c.jsm.streams.add({ name: "WQ", subjects: ["wq.>"], allow_atomic: true, retention: "workqueue" } as any);
    await c.jsm.consumers.add("WQ", { durable_name: "W", ack_policy: "explicit" as any, filter_subject: "wq.last" });
    await pubRaw(c.nc, "wq.first", batchMsg("w", 1));
    await pubRaw(c.nc, "wq.first", batchMsg("w", 2));
    expect(JSON.parse(await pubRaw(c.nc, "wq.last", batchMsg("w", 3, { "Nats-Batch-Commit": "1" }))).count).toBe(3);
    const m = await (await c.js.consumers.get("WQ", "W")).next({ expires: 5_000 });
    await m!.ackAck();
    expect((await c.jsm.streams.info("WQ")).state.messages).toBe(2);
    await c.nc.close();
    await server.kill9();
    await server.restart();
    c = await connectJs(server);
    expect((await c.jsm.streams.info("WQ")).state.messages).toBe(2);
    expect(server.log()).not.toMatch(/was not committed/);
    await server.stop();
  });

  natterOnly("kill -9 at random points of batches, many times: every batch in the stream is whole, every committed one is there", async () => {
    const server = await startJs();
    // A bounded schedule in the suite; BATCH_KILL_SECONDS=300 (and BATCH_KILL_ROUNDS) for a long run.
    const deadline = Date.now() + Number(process.env.BATCH_KILL_SECONDS ?? 12) * 1000;
    const maxRounds = Number(process.env.BATCH_KILL_ROUNDS ?? 8);
    const payload = new Uint8Array(48 * 1024).fill(97); // batches of up to ~5.7 MB: a flush writes them in pieces
    const committed = new Map<string, number>(); // batch id → size, for every commit PubAck received
    let rounds = 0;
    let c = await connectJs(server);
    await c.jsm.streams.add({ name: "K", subjects: ["k.>"], allow_atomic: true } as any);
    while (Date.now() < deadline && rounds < maxRounds) {
      rounds++;
      let stop = false;
      const publisher = (async () => {
        for (let b = 0; !stop; b++) {
          const id = `r${rounds}-b${b}`;
          const size = 1 + Math.floor(Math.random() * 120);
          try {
            for (let i = 1; i < size; i++) c.nc.publish(`k.${i % 3}`, payload, { headers: hdrs(batchMsg(id, i)) });
            const r = await c.nc.request(`k.${size % 3}`, payload, { headers: hdrs(batchMsg(id, size, { "Nats-Batch-Commit": "1" })), timeout: 5_000 });
            const ack = JSON.parse(dec(r.data));
            if (ack.error) throw new Error(JSON.stringify(ack.error));
            expect(ack.count).toBe(size);
            committed.set(id, size);
          } catch {
            return; // the server went away mid-batch
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
      await server.kill9();
      stop = true;
      await publisher;
      await c.nc.close().catch(() => {});
      await server.restart();
      c = await connectJs(server);
      // Read everything back: batches by id, with the sequence numbers their messages carry.
      const info = await c.jsm.streams.info("K");
      const batches = new Map<string, number[]>();
      if (info.state.messages > 0) {
        const consumer = await c.js.consumers.get("K");
        const iter = await consumer.consume({ max_messages: 200 });
        let n = 0;
        const watchdog = setTimeout(() => iter.stop(), 30_000);
        for await (const m of iter) {
          const id = m.headers!.get("Nats-Batch-Id");
          const list = batches.get(id) ?? [];
          list.push(Number(m.headers!.get("Nats-Batch-Sequence")));
          if (m.headers!.get("Nats-Batch-Commit") === "1") list.push(-1); // the commit's mark
          batches.set(id, list);
          if (++n === info.state.messages) break;
        }
        clearTimeout(watchdog);
        iter.stop();
        expect(n).toBe(info.state.messages);
      }
      for (const [id, seqs] of batches) {
        const size = seqs.filter((s) => s > 0).length;
        expect(seqs, id).toEqual([...Array.from({ length: size }, (_, i) => i + 1), -1]);
        if (committed.has(id)) expect(size, id).toBe(committed.get(id));
      }
      for (const [id] of committed) if (id.startsWith(`r${rounds}-`)) expect(batches.has(id), id).toBe(true);
      // Start the next round from an empty stream (keeps the read-back small).
      await c.jsm.streams.purge("K");
    }
    expect(rounds).toBeGreaterThanOrEqual(3);
    // How often a kill cut a batch's write (its messages were removed at the restart): for the record.
    const cut = server.log().split("was not committed before the server stopped").length - 1;
    console.info(`batch kill test: ${rounds} kills, ${committed.size} batches committed, ${cut} cut batch(es) removed at restart`);
    await server.stop();
  }, 120_000);
});
