// Retention policies, flow control under volume, and the monitoring view of streams and consumers.
import { AckPolicy } from "@nats-io/jetstream";
import { createInbox, type Msg } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { freePort } from "../harness/server.ts";
import { headers } from "@nats-io/nats-core";
import { api, connectJs, dec, enc, startJs, until } from "./helpers.ts";

describe("retention", () => {
  test("workqueue: an acked message is gone; one consumer per subject", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "WQ", subjects: ["wq.>"], retention: "workqueue" as never });
    for (let i = 0; i < 3; i++) await c.js.publish("wq.job", enc(`job${i}`));
    await c.jsm.consumers.add("WQ", { durable_name: "workers", ack_policy: AckPolicy.Explicit });
    const second = await api(c.nc, "$JS.API.CONSUMER.DURABLE.CREATE.WQ.other", { stream_name: "WQ", config: { durable_name: "other", ack_policy: "explicit" } });
    expect(second.error).toEqual({ code: 400, err_code: 10099, description: "multiple non-filtered consumers not allowed on workqueue stream" });
    const consumer = await c.js.consumers.get("WQ", "workers");
    const m = (await consumer.next({ expires: 2_000 }))!;
    await m.ackAck();
    const info = await c.jsm.streams.info("WQ");
    expect(info.state).toMatchObject({ messages: 2, first_seq: 2 });
  });

  test("interest: kept until every consumer acks; dropped when nobody is interested", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "IN", subjects: ["in.>"], retention: "interest" as never });
    await c.js.publish("in.a", enc("nobody"));
    expect((await c.jsm.streams.info("IN")).state.messages).toBe(0);
    await c.jsm.consumers.add("IN", { durable_name: "one", ack_policy: AckPolicy.Explicit });
    await c.jsm.consumers.add("IN", { durable_name: "two", ack_policy: AckPolicy.Explicit });
    await c.js.publish("in.a", enc("both"));
    expect((await c.jsm.streams.info("IN")).state.messages).toBe(1);
    await (await (await c.js.consumers.get("IN", "one")).next({ expires: 2_000 }))!.ackAck();
    expect((await c.jsm.streams.info("IN")).state.messages).toBe(1);
    await (await (await c.js.consumers.get("IN", "two")).next({ expires: 2_000 }))!.ackAck();
    expect((await c.jsm.streams.info("IN")).state.messages).toBe(0);
  });

  test("interest: deleting a consumer drops what no other consumer still wants", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "IND", subjects: ["ind.>"], retention: "interest" as never });
    await c.jsm.consumers.add("IND", { durable_name: "fast", ack_policy: AckPolicy.Explicit });
    await c.jsm.consumers.add("IND", { durable_name: "slow", ack_policy: AckPolicy.Explicit });
    for (let i = 1; i <= 5; i++) await c.js.publish("ind.x", enc(`m${i}`));
    const fast = await c.js.consumers.get("IND", "fast");
    for (let i = 0; i < 2; i++) await (await fast.next({ expires: 2_000 }))!.ackAck();
    // "slow" never acked anything, so all five stay while it exists.
    expect((await c.jsm.streams.info("IND")).state.messages).toBe(5);
    await c.jsm.consumers.delete("IND", "slow");
    // 1 and 2 were acked by the only consumer left; 3–5 it still wants.
    await until(async () => (await c.jsm.streams.info("IND")).state.messages === 3);
    expect((await c.jsm.streams.info("IND")).state).toMatchObject({ messages: 3, first_seq: 3, last_seq: 5 });
    await c.jsm.consumers.delete("IND", "fast");
    await until(async () => (await c.jsm.streams.info("IND")).state.messages === 0);
    expect((await c.jsm.streams.info("IND")).state).toMatchObject({ messages: 0, last_seq: 5 });
  });
});

describe("flow control", () => {
  test("a push consumer with flow control delivers 8 MB through flow control requests", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "FC", subjects: ["fc.>"] });
    const payload = new Uint8Array(64 * 1024);
    const proms: Promise<unknown>[] = [];
    for (let i = 0; i < 128; i++) proms.push(c.js.publish("fc.x", payload));
    await Promise.all(proms);
    const inbox = createInbox();
    const sub = c.nc.subscribe(inbox);
    await c.jsm.consumers.add("FC", { durable_name: "fc", ack_policy: AckPolicy.None, deliver_subject: inbox, flow_control: true, idle_heartbeat: 1_000_000_000 });
    let data = 0;
    let fcRequests = 0;
    for await (const m of sub) {
      if (m.headers?.code === 100 && m.headers.description === "FlowControl Request") {
        fcRequests++;
        m.respond();
        continue;
      }
      if (m.headers?.code === 100) continue;
      data++;
      if (data === 128) break;
    }
    expect(fcRequests).toBeGreaterThanOrEqual(1);
    const info = await c.jsm.consumers.info("FC", "fc");
    expect(info.delivered.stream_seq).toBe(128);
    expect(info.num_pending).toBe(0);
  });
});

describe("monitoring", () => {
  test("/jsz reports streams, consumers and their backlog", async () => {
    const mport = await freePort();
    const server = await startJs({ args: ["-m", String(mport)] });
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "MON", subjects: ["mon.>"] });
    for (let i = 0; i < 5; i++) await c.js.publish("mon.x", enc("x"));
    await c.jsm.consumers.add("MON", { durable_name: "lagging", ack_policy: AckPolicy.Explicit });
    const m = (await (await c.js.consumers.get("MON", "lagging")).next({ expires: 2_000 }))!;
    expect(m.seq).toBe(1);
    const res = await fetch(`http://127.0.0.1:${mport}/jsz?accounts=1&streams=1&consumers=1`);
    const jsz = await res.json();
    expect(jsz).toMatchObject({ streams: 1, consumers: 1, messages: 5 });
    expect(jsz.server_id).toMatch(/^N/);
    const stream = jsz.account_details[0].stream_detail[0];
    expect(stream.name).toBe("MON");
    expect(stream.state.messages).toBe(5);
    expect(stream.consumer_detail[0]).toMatchObject({ name: "lagging", num_pending: 4, num_ack_pending: 1 });
  });
});

describe("dead letters (natter)", () => {
  test.skipIf(process.env.NATTER_TEST_SERVER === "nats-server")("max_deliver and +TERM republish to the dead-letter subject, with advisories", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "JOBS", subjects: ["jobs.>"] });
    await c.jsm.streams.add({ name: "DLQ", subjects: ["dlq.>"] });
    const advisories: Msg[] = [];
    const adv = c.nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.>", { callback: (_e, m) => void advisories.push(m) });
    await c.js.publish("jobs.a", enc("poison"));
    await c.js.publish("jobs.b", enc("rejected"));
    const created = await api(c.nc, "$JS.API.CONSUMER.DURABLE.CREATE.JOBS.w", {
      stream_name: "JOBS",
      config: { durable_name: "w", ack_policy: "explicit", ack_wait: 200_000_000, max_deliver: 2, dead_letter_subject: "dlq.jobs" },
    });
    expect(created.config.dead_letter_subject).toBe("dlq.jobs");
    const consumer = await c.js.consumers.get("JOBS", "w");
    const first = (await consumer.next({ expires: 2_000 }))!;
    expect(first.seq).toBe(1);
    const second = (await consumer.next({ expires: 2_000 }))!;
    expect(second.seq).toBe(2);
    second.term("bad input");
    // seq 1 is never acked: redelivered once, then dead-lettered.
    const again = (await consumer.next({ expires: 3_000 }))!;
    expect(again.seq).toBe(1);
    await until(async () => (await c.jsm.streams.info("DLQ")).state.messages === 2, 5_000, "two dead letters");
    const dl1 = (await c.jsm.streams.getMessage("DLQ", { seq: 1 }))!;
    expect(dl1.header.get("Nats-Dead-Letter-Reason")).toBe("terminated");
    expect(dl1.header.get("Nats-Dead-Letter-Sequence")).toBe("2");
    expect(dl1.header.get("Nats-Dead-Letter-Term-Reason")).toBe("bad input");
    const dl2 = (await c.jsm.streams.getMessage("DLQ", { seq: 2 }))!;
    expect(dl2.header.get("Nats-Dead-Letter-Reason")).toBe("max_deliveries");
    expect(dl2.header.get("Nats-Dead-Letter-Stream")).toBe("JOBS");
    expect(dl2.header.get("Nats-Dead-Letter-Consumer")).toBe("w");
    expect(dl2.header.get("Nats-Dead-Letter-Deliveries")).toBe("2");
    expect(new TextDecoder().decode(dl2.data)).toBe("poison");
    const deadLetterAdvisories = () => advisories.map((m) => m.subject).filter((s) => !s.includes(".CREATED."));
    await until(() => deadLetterAdvisories().length >= 2, 5_000, "advisories");
    const subjects = deadLetterAdvisories().sort();
    expect(subjects).toEqual(["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.w", "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.JOBS.w"]);
    adv.unsubscribe();
  });
});

describe("delayed delivery (nats-server 2.12 message schedules)", () => {
  test.skipIf(process.env.NATTER_TEST_SERVER === "nats-server")("Nats-Schedule @at holds a message back, then publishes it to its target", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    await c.jsm.streams.add({ name: "SCH", subjects: ["sch.>"], allow_msg_schedules: true } as never);
    await c.jsm.consumers.add("SCH", { durable_name: "r", ack_policy: AckPolicy.None, filter_subject: "sch.out" });
    const h = headers();
    // RFC 3339 to the second (as nats-server parses it): the next whole second at least 500 ms away.
    const at = new Date(Math.ceil((Date.now() + 500) / 1000) * 1000);
    h.set("Nats-Schedule", `@at ${at.toISOString().replace(/\.\d+Z$/, "Z")}`);
    h.set("Nats-Schedule-Target", "sch.out");
    h.set("X-Order", "42");
    await c.js.publish("sch.later", enc("delayed"), { headers: h });
    const consumer = await c.js.consumers.get("SCH", "r");
    const t0 = Date.now();
    const m = (await consumer.next({ expires: 5_000 }))!;
    expect(m).not.toBeNull();
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(m.subject).toBe("sch.out");
    expect(dec(m.data)).toBe("delayed");
    expect(m.headers!.get("X-Order")).toBe("42");
    expect(m.headers!.get("Nats-Scheduler")).toBe("sch.later");
    expect(m.headers!.get("Nats-Schedule-Next")).toBe("purge");
    // The schedule itself is gone.
    const info = await c.jsm.streams.info("SCH", { subjects_filter: ">" });
    expect(info.state.subjects).toEqual({ "sch.out": 1 });
    const bad = headers();
    bad.set("Nats-Schedule", "tomorrow");
    await expect(c.js.publish("sch.x", enc("x"), { headers: bad })).rejects.toThrow(/message schedules pattern is invalid/);
    await c.jsm.streams.add({ name: "NOSCH", subjects: ["nosch.>"] });
    await expect(c.js.publish("nosch.x", enc("x"), { headers: h })).rejects.toThrow(/message schedules is disabled/);
  });
});
