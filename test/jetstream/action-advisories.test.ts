// nats-server's action advisories: a stream created, updated and deleted, a consumer created and deleted (by
// request, by its inactivity, with its stream), each announced once on `$JS.EVENT.ADVISORY.STREAM|CONSUMER.…`
// in the stream's account; an idempotent create announces nothing. Also against nats-server
// (NATTER_TEST_SERVER=nats-server).
import { AckPolicy } from "@nats-io/jetstream";
import { describe, expect, test } from "vitest";
import { api, collectJson, connectJs, startJs, until } from "./helpers.ts";

describe("action advisories", () => {
  test("stream and consumer created, updated, deleted: one advisory each, in order", async () => {
    const server = await startJs();
    const c = await connectJs(server);
    const streamEvents = collectJson(c.nc, "$JS.EVENT.ADVISORY.STREAM.*.ACT");
    const consumerEvents = collectJson(c.nc, "$JS.EVENT.ADVISORY.CONSUMER.*.ACT.*");
    await c.nc.flush();
    await c.jsm.streams.add({ name: "ACT", subjects: ["act.>"] });
    await c.jsm.streams.add({ name: "ACT", subjects: ["act.>"] }); // the same again: nothing new
    await c.jsm.streams.update("ACT", { subjects: ["act.>"], max_msgs: 10 });
    await c.jsm.consumers.add("ACT", { durable_name: "D", ack_policy: AckPolicy.Explicit });
    await c.jsm.consumers.add("ACT", { durable_name: "D", ack_policy: AckPolicy.Explicit });
    await c.jsm.consumers.delete("ACT", "D");
    const shortLived = await c.jsm.consumers.add("ACT", { ack_policy: AckPolicy.None, inactive_threshold: 200_000_000 });
    await until(() => consumerEvents.some((e) => e.consumer === shortLived.name && e.action === "delete"), 10_000, "the ephemeral deleted for inactivity");
    await c.jsm.consumers.add("ACT", { durable_name: "KEPT", ack_policy: AckPolicy.Explicit });
    expect((await api(c.nc, "$JS.API.STREAM.DELETE.ACT")).success).toBe(true);
    await until(() => streamEvents.length === 3 && consumerEvents.length === 6, 10_000, "the stream's and its consumer's deletes");
    expect(streamEvents.map((e) => e.action)).toEqual(["create", "modify", "delete"]);
    for (const e of streamEvents) {
      expect(e).toMatchObject({ type: "io.nats.jetstream.advisory.v1.stream_action", stream: "ACT" });
      expect(typeof e.id).toBe("string");
      expect(typeof e.timestamp).toBe("string");
    }
    expect(consumerEvents.map((e) => [e.consumer, e.action])).toEqual([
      ["D", "create"], ["D", "delete"], [shortLived.name, "create"], [shortLived.name, "delete"], ["KEPT", "create"], ["KEPT", "delete"],
    ]);
    for (const e of consumerEvents) expect(e).toMatchObject({ type: "io.nats.jetstream.advisory.v1.consumer_action", stream: "ACT" });
  });
});
