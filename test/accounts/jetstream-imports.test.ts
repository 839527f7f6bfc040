// JetStream deliveries cross stream imports like any publish (nats-server: a push consumer's deliveries
// are published in its account, and a stream export/import carries them on). Account A owns the streams
// and exports its JetStream API, flow-control replies and the deliver subjects `accI.>`; account I imports
// them, so a client of I can create push consumers of A's streams and watch A's KV buckets (its inboxes
// made under `accI` so that they fall inside the export).
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { connectV3 } from "../harness/clients.ts";
import { startServer } from "../harness/server.ts";
import { dec, enc, until } from "../jetstream/helpers.ts";

const ACCOUNTS = `
accounts {
  A: {
    jetstream: enabled
    users: [{user: a, password: a}]
    exports: [
      {service: "$JS.API.>", response: stream}
      {service: "$JS.FC.>"}
      {service: "$JS.ACK.>"}
      {stream: "accI.>"}
    ]
  }
  I: {
    users: [{user: i, password: i}]
    imports: [
      {service: {account: A, subject: "$JS.API.>"}, to: "JS.A.API.>"}
      {service: {account: A, subject: "$JS.FC.>"}}
      {service: {account: A, subject: "$JS.ACK.>"}}
      {stream: {account: A, subject: "accI.>"}}
    ]
  }
  J: {
    users: [{user: j, password: j}]
    imports: [ {stream: {account: A, subject: "accI.>"}, prefix: "fromA"} ]
  }
}
`;

async function connect(server: Awaited<ReturnType<typeof startServer>>, user: string, inboxPrefix?: string): Promise<NatsConnection> {
  return (await connectV3(server, { user, pass: user, ...(inboxPrefix ? { inboxPrefix } : {}) })) as unknown as NatsConnection;
}

describe("JetStream deliveries through a stream import", () => {
  test("a push consumer of A with deliver subject accI.deliver reaches I's subscribers, showing the message's subject", async () => {
    const server = await startServer({ jetstream: true, config: ACCOUNTS });
    const a = await connect(server, "a");
    const i = await connect(server, "i");
    const jsm = await jetstreamManager(a);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    const js = jetstream(a);
    for (let k = 0; k < 3; k++) await js.publish(`orders.${k}`, enc(`o${k}`));

    // Nobody in I listens yet: the consumer is not bound (the export alone is no interest).
    await jsm.consumers.add("ORDERS", { durable_name: "push", deliver_subject: "accI.deliver", ack_policy: AckPolicy.None });
    expect((await jsm.consumers.info("ORDERS", "push")).push_bound ?? false).toBe(false);

    const seen: { subject: string; data: string }[] = [];
    i.subscribe("accI.deliver", { callback: (_e, m) => void seen.push({ subject: m.subject, data: dec(m.data) }) });
    await i.flush();
    await until(() => seen.length === 3, 5_000, "deliveries in I");
    expect((await jsm.consumers.info("ORDERS", "push")).push_bound).toBe(true);
    expect(seen).toEqual([
      { subject: "orders.0", data: "o0" },
      { subject: "orders.1", data: "o1" },
      { subject: "orders.2", data: "o2" },
    ]);
    // New messages follow the same way.
    await js.publish("orders.9", enc("o9"));
    await until(() => seen.length === 4, 5_000, "a live delivery in I");
    expect(seen[3]).toEqual({ subject: "orders.9", data: "o9" });
  });

  test("an import with a prefix: the deliver subject is mapped, the subject shown is the message's", async () => {
    const server = await startServer({ jetstream: true, config: ACCOUNTS });
    const a = await connect(server, "a");
    const j = await connect(server, "j");
    const jsm = await jetstreamManager(a);
    await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"] });
    await jetstream(a).publish("events.1", enc("e1"));
    const seen: string[] = [];
    j.subscribe("fromA.accI.j", { callback: (_e, m) => void seen.push(`${m.subject}=${dec(m.data)}`) });
    await j.flush();
    await jsm.consumers.add("EVENTS", { durable_name: "toj", deliver_subject: "accI.j", ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
    await until(() => seen.length === 1, 5_000, "the delivery in J");
    expect(seen).toEqual(["events.1=e1"]);
  });

  test("a pull consumer of A fetched from I through the imported API (responses cross back, showing the messages' subjects)", async () => {
    const server = await startServer({ jetstream: true, config: ACCOUNTS });
    const a = await connect(server, "a");
    const i = await connect(server, "i", "accI");
    const jsm = await jetstreamManager(a);
    await jsm.streams.add({ name: "WORK", subjects: ["work.>"] });
    for (let k = 0; k < 3; k++) await jetstream(a).publish(`work.${k}`, enc(`w${k}`));
    await jsm.consumers.add("WORK", { durable_name: "pull", ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(i, { apiPrefix: "JS.A.API" }).consumers.get("WORK", "pull");
    const got: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 3, expires: 3_000 })) {
      got.push(`${m.subject}=${dec(m.data)}`);
      m.ack();
      if (got.length === 3) break;
    }
    expect(got).toEqual(["work.0=w0", "work.1=w1", "work.2=w2"]);
    await until(async () => (await jsm.consumers.info("WORK", "pull")).num_ack_pending === 0, 5_000, "the acks from I");
  });

  test("a KV watcher in I, through the imported API, sees A's bucket", async () => {
    const server = await startServer({ jetstream: true, config: ACCOUNTS });
    const a = await connect(server, "a");
    const i = await connect(server, "i", "accI");
    const kvA = await new Kvm(a).create("config");
    await kvA.put("k1", enc("v1"));

    const kvI = await new Kvm(jetstream(i, { apiPrefix: "JS.A.API" })).open("config");
    expect(dec((await kvI.get("k1"))!.value)).toBe("v1");
    const seen: string[] = [];
    const watch = await kvI.watch({ key: ">" });
    const done = (async () => {
      for await (const e of watch) seen.push(`${e.key}=${dec(e.value)}`);
    })();
    await until(() => seen.length === 1, 5_000, "the watcher's initial value");
    await kvA.put("k2", enc("v2"));
    await kvA.put("k1", enc("v3"));
    await until(() => seen.length === 3, 5_000, "the watcher's updates");
    expect(seen).toEqual(["k1=v1", "k2=v2", "k1=v3"]);
    watch.stop();
    await done;
  });
});
