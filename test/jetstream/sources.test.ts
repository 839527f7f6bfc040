// Mirrors and sources on one server (src/jetstream/source.ts), and nats-server's answers to bad ones.
// Runs against nats-server too (NATTER_TEST_SERVER=nats-server): the same contents and errors.
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { api, collectJson, connectJs, dec, enc, startJs, until } from "./helpers.ts";

describe("mirrors and sources on one server", () => {
  test("a source gathers two streams with Nats-Stream-Source headers; a mirror keeps the origin's sequences, gaps included", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await jsm.streams.add({ name: "A", subjects: ["a.>"] });
      await jsm.streams.add({ name: "B", subjects: ["b.>"] });
      for (let i = 0; i < 5; i++) await js.publish(`a.${i}`, enc(`a${i}`), { msgID: `id-a${i}` });
      await js.publish("b.1", enc("b1"));
      await jsm.streams.add({ name: "ALL", sources: [{ name: "A" }, { name: "B", filter_subject: "b.>" }] });
      await until(async () => (await jsm.streams.info("ALL")).state.messages === 6, 10_000, "6 sourced messages");
      const all = await jsm.streams.info("ALL");
      expect(all.config.subjects ?? []).toEqual([]);
      expect(all.sources?.map((s) => s.name).sort()).toEqual(["A", "B"]);
      const headers: string[] = [];
      for (let seq = 1; seq <= 6; seq++) headers.push((await jsm.streams.getMessage("ALL", { seq }))!.header.get("Nats-Stream-Source"));
      // nats-server 2.10's form (natter's): `<origin> <seq> <filter> <dest>`; 2.9.10 writes `<origin> <seq>`.
      const tail = serverKind === "nats-server" ? "" : " > >";
      expect(headers.filter((h) => h.startsWith("A ")).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `A ${n}${tail}`));
      expect(headers.filter((h) => h.startsWith("B "))).toEqual([serverKind === "nats-server" ? "B 1" : "B 1 b.> >"]);
      // The origin's headers are kept.
      const first = (await jsm.streams.getMessage("ALL", { seq: headers.indexOf(`A 1${tail}`) + 1 }))!;
      expect(first.header.get("Nats-Msg-Id")).toBe("id-a0");

      // A mirror: origin sequence numbers, a deleted origin message a gap.
      await jsm.streams.deleteMessage("A", 3);
      await jsm.streams.add({ name: "M", mirror: { name: "A" } });
      await until(async () => (await jsm.streams.info("M")).state.last_seq === 5, 10_000, "the mirror up to 5");
      const m = await jsm.streams.info("M");
      expect(m.state.messages).toBe(4);
      expect(m.state.first_seq).toBe(1);
      expect(m.mirror?.name).toBe("A");
      expect((await jsm.streams.getMessage("M", { seq: 4 }))!.subject).toBe("a.3");
      expect((await jsm.streams.getMessage("M", { seq: 4 }))!.header?.get("Nats-Stream-Source") ?? "").toBe("");
      // New messages follow.
      await js.publish("a.9", enc("a9"));
      await until(async () => (await jsm.streams.info("M")).state.last_seq === 6 && (await jsm.streams.info("ALL")).state.messages === 7, 10_000, "the new message in both");
      expect(dec((await jsm.streams.getMessage("M", { seq: 6 }))!.data)).toBe("a9");
      // A mirror from a given origin sequence on: the origin's sequences from there.
      await jsm.streams.add({ name: "M_LATE", mirror: { name: "A", opt_start_seq: 4 } });
      await until(async () => (await jsm.streams.info("M_LATE")).state.last_seq === 6, 10_000, "the late mirror");
      const late = await jsm.streams.info("M_LATE");
      expect([late.state.first_seq, late.state.messages]).toEqual([4, 3]);
      expect((await jsm.streams.getMessage("M_LATE", { seq: 4 }))!.subject).toBe("a.3");
      // A source from a given origin sequence on, and a filtered one.
      await jsm.streams.add({ name: "LATE", sources: [{ name: "A", opt_start_seq: 4 }] });
      await jsm.streams.add({ name: "ONLY4", sources: [{ name: "A", filter_subject: "a.4" }] });
      // A holds a.0 a.1 _ a.3 a.4 a.9 (sequences 1-6, 3 deleted).
      await until(async () => (await jsm.streams.info("LATE")).state.messages === 3 && (await jsm.streams.info("ONLY4")).state.messages === 1, 10_000, "the late and filtered sources");
      expect((await jsm.streams.getMessage("LATE", { seq: 1 }))!.subject).toBe("a.3");
      expect((await jsm.streams.getMessage("ONLY4", { seq: 1 }))!.subject).toBe("a.4");
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test("a mirror's copies keep the origin's time (nats-server stores the ack reply's timestamp); a source's copies get their own", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await jsm.streams.add({ name: "T", subjects: ["t.>"] });
      for (let i = 1; i <= 4; i++) await js.publish(`t.${i}`, enc(`m${i}`));
      await jsm.streams.deleteMessage("T", 2); // a gap in the mirror: the message after it keeps its time too
      // Created after the publishes: a copy made now has a later time of its own.
      await jsm.streams.add({ name: "TM", mirror: { name: "T" } });
      await jsm.streams.add({ name: "TS", sources: [{ name: "T" }] });
      await until(async () => (await jsm.streams.info("TM")).state.messages === 3 && (await jsm.streams.info("TS")).state.messages === 3, 10_000, "3 copies in each");
      const time = async (stream: string, seq: number): Promise<string> => {
        const answer = await api(nc, `$JS.API.STREAM.MSG.GET.${stream}`, { seq });
        expect(answer.error, `${stream} ${seq}`).toBeUndefined();
        return answer.message.time as string;
      };
      const origins = [1, 3, 4];
      for (const [k, seq] of origins.entries()) {
        const origin = await time("T", seq);
        expect(await time("TM", seq), `mirrored ${seq}`).toBe(origin);
        expect(Date.parse(await time("TS", k + 1)), `sourced ${seq}`).toBeGreaterThan(Date.parse(origin));
      }
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test("past the origin's retention: a source resumed after the origin dropped what it had not copied goes on from the origin's first message (natter also sends an advisory with the lost sequences)", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await jsm.streams.add({ name: "O", subjects: ["o.>"], max_msgs: 5 });
      await jsm.streams.add({ name: "C", subjects: ["c"], sources: [{ name: "O" }] });
      for (let i = 1; i <= 3; i++) await js.publish(`o.${i}`, enc(`m${i}`));
      await until(async () => (await jsm.streams.info("C")).state.messages === 3, 10_000, "3 sourced messages");
      // C stops sourcing while O goes on, keeping only its last 5 (8-12).
      await jsm.streams.update("C", { subjects: ["c"], sources: [] });
      for (let i = 4; i <= 12; i++) await js.publish(`o.${i}`, enc(`m${i}`));
      const gaps = collectJson(nc, "$JS.EVENT.ADVISORY.STREAM.SOURCE_GAP.C");
      await nc.flush();
      await jsm.streams.update("C", { subjects: ["c"], sources: [{ name: "O" }] });
      await until(async () => (await jsm.streams.info("C")).state.messages === 8, 10_000, "8 sourced messages");
      const data: string[] = [];
      for (let seq = 1; seq <= 8; seq++) data.push(dec((await jsm.streams.getMessage("C", { seq }))!.data));
      expect(data).toEqual(["m1", "m2", "m3", "m8", "m9", "m10", "m11", "m12"]);
      if (serverKind === "natter") {
        await until(() => gaps.length === 1, 5_000, "the gap's advisory");
        expect(gaps[0]).toMatchObject({ type: "io.natter.jetstream.advisory.v1.stream_source_gap", stream: "C", mirror: false, source: "O", first_seq: 4, last_seq: 7 });
      }
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test("bad mirrors and sources get nats-server's errors", async () => {
    const server = await startJs();
    try {
      const { nc } = await connectJs(server);
      const create = (cfg: Record<string, unknown>) => api(nc, `$JS.API.STREAM.CREATE.${cfg.name}`, cfg);
      const err = async (cfg: Record<string, unknown>) => (await create(cfg)).error;
      expect(await err({ name: "M1", subjects: ["x"], mirror: { name: "O" } })).toEqual({ code: 400, err_code: 10034, description: "stream mirrors can not contain subjects" });
      expect(await err({ name: "M2", mirror: { name: "O" }, sources: [{ name: "P" }] })).toEqual({ code: 400, err_code: 10031, description: "stream mirrors can not also contain other sources" });
      expect(await err({ name: "S1", sources: [{ name: "S1" }] })).toEqual({ code: 500, err_code: 10052, description: "detected cycle" });
      expect(await err({ name: "M3", mirror: { name: "M3" } })).toEqual({ code: 500, err_code: 10052, description: "detected cycle" });
      if (serverKind === "natter") {
        // nats-server 2.10's checks (2.9.10 creates these).
        expect(await err({ name: "S2", sources: [{ name: "a.b" }] })).toEqual({ code: 400, err_code: 10141, description: "sourced stream name is invalid" });
        expect(await err({ name: "S3", sources: [{ name: "P" }, { name: "P" }] })).toEqual({ code: 400, err_code: 10140, description: "duplicate source configuration detected" });
      }
      // A loop through two streams.
      expect((await create({ name: "L1", subjects: ["l1"], sources: [{ name: "L2" }] })).error).toBeUndefined();
      expect(await err({ name: "L2", subjects: ["l2"], sources: [{ name: "L1" }] })).toEqual({ code: 500, err_code: 10052, description: "detected cycle" });
      // An external API nobody answers: checked below, after the wait for M4's error.
      expect((await create({ name: "M5", mirror: { name: "X", external: { api: "$JS.nowhere.API", deliver: "" } } })).error).toBeUndefined();
      // A mirror of a stream that does not exist: created; the error is in its info.
      expect((await create({ name: "M4", mirror: { name: "NOPE" } })).error).toBeUndefined();
      await until(async () => (await api(nc, "$JS.API.STREAM.INFO.M4")).mirror?.error !== undefined, 10_000, "the mirror's error");
      const info = await api(nc, "$JS.API.STREAM.INFO.M4");
      expect(info.mirror.error).toEqual({ code: 404, err_code: 10059, description: "stream not found" });
      expect(info.mirror.active).toBe(-1);
      // A mirror can not be changed afterwards.
      const update = await api(nc, "$JS.API.STREAM.UPDATE.M4", { name: "M4", mirror: { name: "OTHER" } });
      expect(update.error).toEqual({ code: 400, err_code: 10055, description: "stream mirror configuration can not be updated" });
      // An external API nobody answers (created before M4's wait above): no error, never active.
      const nowhere = await api(nc, "$JS.API.STREAM.INFO.M5");
      expect(nowhere.mirror.active).toBe(-1);
      expect(nowhere.mirror.error).toBeUndefined();
      expect(nowhere.mirror.external).toEqual({ api: "$JS.nowhere.API", deliver: "" });
      await nc.close();
    } finally {
      await server.stop();
    }
  });
});
