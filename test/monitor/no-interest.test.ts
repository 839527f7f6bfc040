// A PUB no one wants is counted as nats-server counts it, also when natter takes it before its payload
// has arrived and skips the payload (src/protocol/parser.ts, takePubUnread): varz and the publisher's connz.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectReady } from "../harness/raw.ts";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { getJson, startMonitored, type Kind, type Monitored } from "./spawn.ts";

type Json = Record<string, unknown>;
const kinds: Kind[] = HAS_NATS_SERVER ? ["natter", "nats-server"] : ["natter"];

describe.each(kinds)("%s: a large PUB to a subject no one wants", (kind) => {
  let server: Monitored;
  beforeAll(async () => {
    server = await startMonitored(kind);
  }, 30_000);
  afterAll(() => server?.stop());

  test("counts in varz in_msgs / in_bytes and in the publisher's connz entry", async () => {
    const c = await connectReady(server.port, { name: "unread" });
    const size = 200_000;
    c.send(`PUB nobody.listens ${size}\r\n`);
    for (let sent = 0; sent < size; sent += 40_000) {
      c.send(Buffer.alloc(40_000, 98));
      await new Promise((r) => setImmediate(r)); // separate writes: the payload arrives over several reads
    }
    c.send("\r\nPUB nobody.listens 3\r\nabc\r\n");
    expect(await c.flush()).toEqual([]);
    const varz = await getJson<Json>(server, "/varz");
    expect([varz.in_msgs, varz.in_bytes]).toEqual([2, size + 3]);
    const connz = await getJson<Json>(server, "/connz");
    const mine = (connz.connections as Json[]).find((x) => x.name === "unread")!;
    expect([mine.in_msgs, mine.in_bytes]).toEqual([2, size + 3]);
  });
});
