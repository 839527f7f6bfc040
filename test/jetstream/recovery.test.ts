// A restart with a large stream (issue 18, item 4; 1,000,000 small messages, so that restoring it takes
// far longer than a client needs to connect and do a core round trip, on any machine): natter accepts clients before its streams are
// restored (it reads the store in slices, serving clients in between), so core pub/sub works at once;
// JetStream requests that arrive meanwhile (API, publishes to a stream) wait and are answered once the
// streams are back, correctly. nats-server restores before it accepts clients (its index files make that
// fast): against it the same requests must simply be answered correctly. natter's saved segment indexes
// make a restart's load fast too, so the test removes them before the restart: the stream is then read
// record by record, as at the first start after an upgrade, which is the slow restore this is about.
import { readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { expect, test } from "vitest";
import { connectV3 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { dec, enc, startJs, until } from "./helpers.ts";

const MESSAGES = 1_000_000;

test("while a large stream is restored, core pub/sub works; the JetStream API answers correctly once it is back", { timeout: 120_000 }, async () => {
  const server = await startJs();
  const filler = await connectV3(server);
  const create = await filler.request("$JS.API.STREAM.CREATE.BIG", enc(JSON.stringify({ name: "BIG", subjects: ["big.>"], storage: "file" })), { timeout: 10_000 });
  expect(JSON.parse(dec(create.data)).error).toBeUndefined();
  const payload = new Uint8Array(16).fill(65);
  for (let i = 0; i < MESSAGES; i++) {
    filler.publish(`big.${i % 16}`, payload);
    if (i % 10_000 === 9_999) await filler.flush();
  }
  await filler.flush();
  // A small stream with direct get and a durable pull consumer: their requests are answered by subscriptions
  // of their own, restored with the stream.
  await filler.request("$JS.API.STREAM.CREATE.SMALL", enc(JSON.stringify({ name: "SMALL", subjects: ["small.>"], storage: "file", allow_direct: true })), { timeout: 10_000 });
  await filler.request("$JS.API.CONSUMER.CREATE.SMALL.PULL", enc(JSON.stringify({ stream_name: "SMALL", config: { durable_name: "PULL", ack_policy: "explicit" } })), { timeout: 10_000 });
  await filler.request("small.one", enc("small message"), { timeout: 10_000 });
  const messages = async () => JSON.parse(dec((await filler.request("$JS.API.STREAM.INFO.BIG", undefined, { timeout: 10_000 })).data)).state.messages;
  await until(async () => (await messages()) === MESSAGES, 60_000, `the stream to hold ${MESSAGES} messages`);
  await filler.close();

  await server.kill9();
  if (serverKind === "natter" && server.storeDir !== undefined) {
    for (const file of readdirSync(server.storeDir, { recursive: true }) as string[]) {
      if (file.endsWith(".idx")) rmSync(path.join(server.storeDir, file));
    }
  }
  await server.restart();
  const nc = await connectV3(server);
  const order: string[] = [];
  // JetStream first: a stream info and a publish to the stream (PubAck expected)…
  const info = nc.request("$JS.API.STREAM.INFO.BIG", undefined, { timeout: 60_000 }).then((m) => {
    order.push("stream info");
    return JSON.parse(dec(m.data));
  });
  const ack = nc.request("big.new", enc("after restart"), { timeout: 60_000 }).then((m) => {
    order.push("puback");
    return JSON.parse(dec(m.data));
  });
  const direct = nc.request("$JS.API.DIRECT.GET.SMALL", enc(JSON.stringify({ seq: 1 })), { timeout: 60_000 }).then((m) => {
    order.push("direct get");
    return m;
  });
  const pullInbox = "recovery.pull.inbox";
  const pulled = new Promise<{ subject: string; data: Uint8Array; ack: string }>((resolve) =>
    nc.subscribe(pullInbox, {
      max: 1,
      callback: (_e, m) => {
        order.push("pull");
        resolve({ subject: m.subject, data: m.data, ack: m.reply ?? "" });
      },
    }),
  );
  nc.publish("$JS.API.CONSUMER.MSG.NEXT.SMALL.PULL", enc(JSON.stringify({ batch: 1, expires: 30_000_000_000 })), { reply: pullInbox });
  // …then core NATS: a message to itself and a request to another client.
  const echoed = new Promise<void>((resolve) => nc.subscribe("core.echo", { max: 1, callback: () => resolve() }));
  const responder = await connectV3(server);
  responder.subscribe("core.svc", { callback: (_e, m) => m.respond(enc("pong")) });
  await responder.flush();
  nc.publish("core.echo", enc("ping"));
  await echoed;
  expect(dec((await nc.request("core.svc", enc("ping"), { timeout: 10_000 })).data)).toBe("pong");
  order.push("core pub/sub");

  const [streamInfo, pubAck, directMsg, pulledMsg] = await Promise.all([info, ack, direct, pulled]);
  expect(dec(directMsg.data)).toBe("small message");
  expect(directMsg.headers?.get("Nats-Sequence")).toBe("1");
  expect(dec(pulledMsg.data)).toBe("small message");
  expect(pulledMsg.ack).toMatch(/^\$JS\.ACK\.SMALL\.PULL\.1\.1\./);
  expect(streamInfo.error).toBeUndefined();
  expect(streamInfo.state.messages).toBeGreaterThanOrEqual(MESSAGES);
  expect(streamInfo.state.first_seq).toBe(1);
  expect(pubAck).toEqual({ stream: "BIG", seq: MESSAGES + 1 });
  if (serverKind === "natter") {
    // Core NATS was served while the stream was still being restored: the JetStream answers came after.
    expect(order[0], `order: ${order.join(", ")}`).toBe("core pub/sub");
    await until(() => /2 stream\(s\) restored in \d+ ms/.test(server.log()), 10_000, "the recovery's log line");
    console.log(`natter: ${/2 stream\(s\) restored in \d+ ms/.exec(server.log())![0]}; order: ${order.join(", ")}`);
  }
  const after = JSON.parse(dec((await nc.request("$JS.API.STREAM.INFO.BIG", undefined, { timeout: 10_000 })).data));
  expect(after.state.messages).toBe(MESSAGES + 1);
  expect(after.state.last_seq).toBe(MESSAGES + 1);
  await nc.close();
  await responder.close();
});
