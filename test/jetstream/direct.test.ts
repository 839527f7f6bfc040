// Direct get: nats-server 2.10's single get (also run against nats-server 2.9.10) and 2.11's batch and
// multi-last get (natter only; shapes from nats-server's stream.go getDirectRequest / getDirectMulti).
// @nats-io/jetstream switches its batch API on only for servers that say 2.11.0 (natter does).
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { connectJs, dec, enc, startJs, until } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");

/** Every message a direct get request gets back, until a status (EOB, 404, 408…) or `single` answers. */
async function directAll(nc: NatsConnection, subject: string, body: string | null, single = false): Promise<Msg[]> {
  const inbox = `_INBOX.direct.${Math.random().toString(36).slice(2)}`;
  const out: Msg[] = [];
  let done = false;
  nc.subscribe(inbox, {
    callback: (_e, m) => {
      out.push(m);
      if (single || m.headers?.code) done = true;
    },
  });
  nc.publish(subject, body === null ? new Uint8Array() : enc(body), { reply: inbox });
  await until(() => done, 5_000, "the answer");
  return out;
}

const status = (m: Msg) => `${m.headers!.code} ${m.headers!.description}`;

async function setup() {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "D", subjects: ["d.>"], allow_direct: true });
  for (const [subject, data] of [["d.a", "a1"], ["d.b", "b1"], ["d.a", "a2"], ["d.c", "c1"], ["d.b", "b2"]]) await c.js.publish(subject!, data!);
  return { server, ...c };
}

describe("direct get", () => {
  test("single gets and their statuses, as nats-server 2.10", async () => {
    const { server, nc } = await setup();
    const one = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 3 }), true);
    expect([dec(one[0]!.data), one[0]!.headers!.get("Nats-Sequence"), one[0]!.headers!.get("Nats-Subject")]).toEqual(["a2", "3", "d.a"]);
    const next = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 2, next_by_subj: "d.a" }), true);
    expect(dec(next[0]!.data)).toBe("a2");
    const last = await directAll(nc, "$JS.API.DIRECT.GET.D.d.b", null, true);
    expect(dec(last[0]!.data)).toBe("b2");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", null))[0]!)).toBe("408 Empty Request");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", "{}"))[0]!)).toBe("408 Empty Request");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", "{nope"))[0]!)).toBe("408 Malformed Request");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 1, last_by_subj: "d.a" })))[0]!)).toBe("408 Bad Request");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 99 })))[0]!)).toBe("404 Message Not Found");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D.d.a", "{}"))[0]!)).toBe("408 Bad Request");
    await server.stop();
  });

  natterOnly("batch: up to n messages with Nats-Num-Pending / Nats-Last-Sequence, then 204 EOB", async () => {
    const { server, nc, jsm } = await setup();
    const got = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 2, batch: 2 }));
    expect(got.map((m) => (m.headers!.code ? status(m) : dec(m.data)))).toEqual(["b1", "a2", "204 EOB"]);
    expect(got.map((m) => [m.headers!.get("Nats-Num-Pending"), m.headers!.get("Nats-Last-Sequence")])).toEqual([["3", "0"], ["2", "2"], ["2", "3"]]);
    // next_by_subj with a wildcard filter, to the end (the batch is larger than what is there).
    const bs = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 1, next_by_subj: "d.b", batch: 10 }));
    expect(bs.map((m) => (m.headers!.code ? status(m) : dec(m.data)))).toEqual(["b1", "b2", "204 EOB"]);
    // max_bytes stops it after the message that reaches it; no_hdr sends payloads only.
    const small = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ seq: 1, batch: 10, max_bytes: 5, no_hdr: true }));
    expect(small.length).toBe(2);
    expect([small[0]!.headers, dec(small[0]!.data)]).toEqual([undefined, "a1"]);
    // start_time: from the first message stored at or after it.
    const third = await jsm.streams.getMessage("D", { seq: 3 });
    const fromTime = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ start_time: third!.time.toISOString(), batch: 10 }));
    expect(fromTime.filter((m) => !m.headers?.code).map((m) => dec(m.data))[0]).toMatch(/^(b1|a2)$/); // ms precision of toISOString
    // batch with last_by_subj is refused.
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ last_by_subj: "d.a", batch: 2 })))[0]!)).toBe("408 Bad Request");
    await server.stop();
  });

  natterOnly("multi_last: the last message of each subject, as of up_to_seq, then 204 EOB with Nats-UpTo-Sequence", async () => {
    const { server, nc } = await setup();
    const all = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ multi_last: ["d.>"] }));
    expect(all.map((m) => (m.headers!.code ? status(m) : dec(m.data)))).toEqual(["a2", "c1", "b2", "204 EOB"]);
    expect(all[3]!.headers!.get("Nats-UpTo-Sequence")).toBe("5");
    const asOf3 = await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ multi_last: ["d.a", "d.b"], up_to_seq: 3 }));
    expect(asOf3.map((m) => (m.headers!.code ? status(m) : dec(m.data)))).toEqual(["b1", "a2", "204 EOB"]);
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ multi_last: ["x.>"] })))[0]!)).toBe("404 No Results");
    expect(status((await directAll(nc, "$JS.API.DIRECT.GET.D", JSON.stringify({ multi_last: ["d.a"], next_by_subj: "d.a" })))[0]!)).toBe("408 Bad Request");
    await server.stop();
  });

  natterOnly("@nats-io/jetstream's getBatch and getLastMessagesFor (which it allows from 2.11.0)", async () => {
    const { server, jsm } = await setup();
    const batch = await jsm.direct.getBatch("D", { seq: 1, batch: 3 });
    const got: string[] = [];
    for await (const m of batch) got.push(`${m.subject}=${m.string()}`);
    expect(got).toEqual(["d.a=a1", "d.b=b1", "d.a=a2"]);
    const lasts = await jsm.direct.getLastMessagesFor("D", { multi_last: ["d.a", "d.c"] });
    const lastGot: string[] = [];
    for await (const m of lasts) lastGot.push(`${m.subject}=${m.string()}`);
    expect(lastGot).toEqual(["d.a=a2", "d.c=c1"]);
    await server.stop();
  });
});
