// A PUB no one wants is counted as nats-server counts it, also when natter takes it before its payload
// has arrived and skips the payload (src/protocol/parser.ts, takePubUnread), or counts it as a repeat of
// the one before (onRepeatedPubs): varz and the publisher's connz.
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

  // natter counts a PUB whose control line repeats that of one which reached no one without looking
  // its subject up again (src/protocol/parser.ts, onRepeatedPubs): counted alike, and a SUB ends that.
  test("PUBs repeating one no one wanted are counted alike; a SUB between them, or from another client between reads, is honoured", async () => {
    const before = await getJson<Json>(server, "/varz");
    const pub = await connectReady(server.port, { name: "repeats" });
    const frame = "PUB nobody.yet 5\r\nhello\r\n";
    pub.send(`${frame.repeat(100)}SUB nobody.yet 1\r\n${frame.repeat(3)}UNSUB 1\r\n${frame.repeat(2)}`);
    const own = await pub.flush();
    expect(own.map((f) => [f.op, f.subject, f.payload?.toString()])).toEqual(Array(3).fill(["MSG", "nobody.yet", "hello"]));
    const sub = await connectReady(server.port);
    sub.send("SUB nobody.yet 7\r\n");
    await sub.flush();
    pub.send(frame.repeat(50));
    expect(await pub.flush()).toEqual([]);
    expect((await sub.messages(50)).length).toBe(50);
    const after = await getJson<Json>(server, "/varz");
    expect([(after.in_msgs as number) - (before.in_msgs as number), (after.in_bytes as number) - (before.in_bytes as number)]).toEqual([155, 775]);
    const connz = await getJson<Json>(server, "/connz");
    const mine = (connz.connections as Json[]).find((x) => x.name === "repeats")!;
    expect([mine.in_msgs, mine.in_bytes, mine.out_msgs]).toEqual([155, 775, 3]);
  });
});
