// Store-and-forward at the edge (issue 14's scenarios, real processes): an edge server keeps acknowledging
// and storing while its leaf link is down, and the hub's stream that sources the edge's stream across the
// domains holds every acknowledged edge message exactly once, in edge order, once the link is back.
import type { NatsConnection } from "nats";
import { describe, expect, test } from "vitest";
import { contents, sc, startEdge, startHub } from "./edge-helpers.ts";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { waitFor, type Kind } from "./spawn.ts";
import { serverKind } from "../harness/server.ts";
import { shortHash as hashOf } from "../../src/jetstream/source-config.ts";

async function publishAcked(ec: NatsConnection, from: number, to: number): Promise<void> {
  const js = ec.jetstream();
  for (let i = from; i < to; i++) {
    const ack = await js.publish(`telemetry.s${i % 3}`, sc.encode(`m${i}`));
    expect(ack.seq).toBe(i + 1);
  }
}

// The reference pair (nats-server on both sides, ~5 s each: its copier retries every ~5 s) checks the test
// itself; it runs with NATTER_TEST_SERVER=nats-server, the suite's own runs test natter.
const referencePair: [Kind, Kind][] = serverKind === "nats-server" ? [["nats-server", "nats-server"]] : [];
const pairs: [Kind, Kind][] = [["nats-server", "natter"], ["natter", "natter"], ["natter", "nats-server"], ...referencePair];

describe.skipIf(!HAS_NATS_SERVER)("edge → hub: a hub stream sourcing the edge's stream across domains", () => {
  for (const [hubKind, edgeKind] of pairs) {
    test(`hub ${hubKind} sources TELEMETRY from edge ${edgeKind}: the hub killed, the edge keeps acknowledging, every message once and in order after the restart`, async () => {
      const hub = await startHub(hubKind);
      const edge = await startEdge(edgeKind, hub);
      const detail = logs(hub, edge);
      const ec = await client(edge);
      let hc = await client(hub);
      await waitForLink(ec, hc, detail);
      await (await ec.jetstreamManager()).streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
      await (await hc.jetstreamManager()).streams.add({ name: "ALL_TELEMETRY", sources: [{ name: "TELEMETRY", external: { api: "$JS.edge.API", deliver: "" } }] });
      await publishAcked(ec, 0, 40);
      await waitFor("40 messages in the hub's stream", async () => (await (await hc.jetstreamManager()).streams.info("ALL_TELEMETRY")).state.messages === 40, 15_000, detail);

      // The link is cut: the hub dies; the edge goes on acknowledging.
      await hub.kill9();
      await publishAcked(ec, 40, 140);
      await hub.start();
      hc = await client(hub);
      await publishAcked(ec, 140, 160);
      const hjsm = await hc.jetstreamManager();
      await waitFor("160 messages in the hub's stream", async () => (await hjsm.streams.info("ALL_TELEMETRY")).state.messages >= 160, 25_000, detail);
      const { data, sources, subjects } = await contents(hjsm, "ALL_TELEMETRY");
      expect(data).toEqual(Array.from({ length: 160 }, (_, i) => `m${i}`));
      expect(subjects).toEqual(Array.from({ length: 160 }, (_, i) => `telemetry.s${i % 3}`));
      // 2.9.10 writes `<origin>:<hash of the api prefix> <origin seq>` (2.10 appends the filter and the destination).
      const tail = hubKind === "natter" ? " > >" : ""; // natter writes 2.10's form
      expect(sources[0]).toMatch(new RegExp(`^TELEMETRY:[0-9A-Za-z]{8} 1${tail}$`));
      expect(sources[159]).toMatch(new RegExp(`^TELEMETRY:[0-9A-Za-z]{8} 160${tail}$`));
      // The hash of the api prefix is nats-server's (the same on both).
      expect(sources[0]!.split(" ")[0]).toBe("TELEMETRY:" + hashOf("$JS.edge.API"));
      const info = await hjsm.streams.info("ALL_TELEMETRY");
      expect(info.sources?.[0]?.name).toBe("TELEMETRY");
      expect((info.sources?.[0] as unknown as { external?: { api: string } }).external?.api).toBe("$JS.edge.API");
    }, 40_000);
  }

  for (const [hubKind, edgeKind] of [["nats-server", "natter"], ["natter", "natter"]] as [Kind, Kind][]) {
    test(`the edge (${edgeKind}) killed -9 in the middle of the hub's (${hubKind}) catch-up: still every message once, in order`, async () => {
      const hub = await startHub(hubKind);
      const edge = await startEdge(edgeKind, hub);
      const detail = logs(hub, edge);
      let ec = await client(edge);
      let hc = await client(hub);
      await waitForLink(ec, hc, detail);
      await (await ec.jetstreamManager()).streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
      await (await hc.jetstreamManager()).streams.add({ name: "ALL_TELEMETRY", sources: [{ name: "TELEMETRY", external: { api: "$JS.edge.API", deliver: "" } }] });
      await hub.kill9();
      const total = 3000;
      const js = ec.jetstream();
      const acks = [];
      for (let i = 0; i < total; i++) acks.push(js.publish(`telemetry.s${i % 3}`, sc.encode(`m${i}`)));
      await Promise.all(acks);
      await hub.start();
      hc = await client(hub);
      const hjsm = await hc.jetstreamManager();
      // Cut the catch-up short: the edge dies as soon as the hub has some of it.
      await waitFor("the catch-up to begin", async () => (await hjsm.streams.info("ALL_TELEMETRY")).state.messages > 0, 20_000, detail);
      await edge.kill9();
      const partial = (await hjsm.streams.info("ALL_TELEMETRY")).state.messages;
      await edge.start();
      ec = await client(edge);
      await waitFor(`${total} messages in the hub's stream`, async () => (await hjsm.streams.info("ALL_TELEMETRY")).state.messages >= total, 25_000, detail);
      const { data } = await contents(hjsm, "ALL_TELEMETRY");
      expect(data).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
      expect(partial).toBeLessThanOrEqual(total);
    }, 60_000);
  }
});

describe.skipIf(!HAS_NATS_SERVER)("hub → edge: an edge stream mirroring the hub's COMMANDS", () => {
  const mirrorPairs: [Kind, Kind][] = [["nats-server", "natter"], ["natter", "natter"], ...referencePair];
  for (const [hubKind, edgeKind] of mirrorPairs) {
    test(`hub ${hubKind} COMMANDS mirrored by edge ${edgeKind}: the hub's sequences; an edge that was offline catches up on restart`, async () => {
      const hub = await startHub(hubKind);
      const edge = await startEdge(edgeKind, hub);
      const detail = logs(hub, edge);
      const hc = await client(hub);
      let ec = await client(edge);
      await waitForLink(ec, hc, detail);
      const hjs = hc.jetstream();
      await (await hc.jetstreamManager()).streams.add({ name: "COMMANDS", subjects: ["commands.>"] });
      for (let i = 0; i < 10; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
      await (await ec.jetstreamManager()).streams.add({ name: "COMMANDS", mirror: { name: "COMMANDS", external: { api: "$JS.hub.API", deliver: "" } } });
      await waitFor("10 mirrored commands", async () => (await (await ec.jetstreamManager()).streams.info("COMMANDS")).state.last_seq === 10, 15_000, detail);

      // The edge goes offline; the hub keeps taking commands (one deleted: a gap the mirror keeps).
      await edge.stop();
      for (let i = 10; i < 30; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
      await (await hc.jetstreamManager()).streams.deleteMessage("COMMANDS", 15);
      await edge.start();
      ec = await client(edge);
      const ejsm = await ec.jetstreamManager();
      await waitFor("30 mirrored commands", async () => (await ejsm.streams.info("COMMANDS")).state.last_seq === 30, 20_000, detail);
      const info = await ejsm.streams.info("COMMANDS");
      expect(info.state.messages).toBe(29);
      expect(info.mirror?.name).toBe("COMMANDS");
      for (const seq of [1, 14, 16, 30]) expect(sc.decode((await ejsm.streams.getMessage("COMMANDS", { seq })).data)).toBe(`c${seq - 1}`);
      await expect(ejsm.streams.getMessage("COMMANDS", { seq: 15 })).rejects.toThrow(/no message found/);
    }, 40_000);
  }

  // Both sides one kind; NATTER_TEST_SERVER=nats-server runs it with nats-server (whose copier retries after ~5 s).
  for (const kind of [serverKind] as Kind[]) {
    test(`past the hub's retention (${kind} hub and edge): the edge's mirror skips what the hub no longer has, keeping the hub's sequences${kind === "natter" ? "; the gap is logged" : ""}`, async () => {
      const hub = await startHub(kind);
      const edge = await startEdge(kind, hub);
      const detail = logs(hub, edge);
      const hc = await client(hub);
      let ec = await client(edge);
      await waitForLink(ec, hc, detail);
      const hjs = hc.jetstream();
      await (await hc.jetstreamManager()).streams.add({ name: "COMMANDS", subjects: ["commands.>"], max_msgs: 10 });
      for (let i = 0; i < 5; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
      await (await ec.jetstreamManager()).streams.add({ name: "COMMANDS", mirror: { name: "COMMANDS", external: { api: "$JS.hub.API", deliver: "" } } });
      await waitFor("5 mirrored commands", async () => (await (await ec.jetstreamManager()).streams.info("COMMANDS")).state.last_seq === 5, 15_000, detail);

      // Offline for longer than the hub keeps commands: it holds 21-30 when the edge is back.
      await edge.stop();
      for (let i = 5; i < 30; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
      await edge.start();
      ec = await client(edge);
      const ejsm = await ec.jetstreamManager();
      await waitFor("the mirror up to 30", async () => (await ejsm.streams.info("COMMANDS")).state.last_seq === 30, 20_000, detail);
      const info = await ejsm.streams.info("COMMANDS");
      expect([info.state.first_seq, info.state.messages, info.state.num_deleted]).toEqual([1, 15, 15]);
      for (const seq of [5, 21, 30]) expect(sc.decode((await ejsm.streams.getMessage("COMMANDS", { seq })).data)).toBe(`c${seq - 1}`);
      await expect(ejsm.streams.getMessage("COMMANDS", { seq: 6 })).rejects.toThrow(/no message found/);
      if (kind === "natter") {
        expect(edge.logSinceStart()).toContain("mirror COMMANDS resumes past the origin's retention: origin sequences 6..20 are no longer there and were not copied");
      }
    }, 40_000);
  }
});
