// JetStream domains across a leaf link (src/jetstream/domain.ts): each side's API is reachable from the
// other as `$JS.<domain>.API` (the clients' `domain` option), the plain `$JS.API` stays on each side, and
// account info, stream info and PubAcks carry the domain. Every pairing of natter and nats-server 2.9.10,
// nats-server ↔ nats-server included: the assertions are checked against the reference too.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StringCodec, type NatsConnection } from "nats";
import { afterAll, describe, expect, test } from "vitest";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { serverKind } from "../harness/server.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

const sc = StringCodec();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function storeDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "natter-domain-"));
  dirs.push(d);
  return d;
}

async function hubAndEdge(hubKind: Kind, edgeKind: Kind, hubDomain = "hub", edgeDomain = "edge"): Promise<{ hub: Proc; edge: Proc; hc: NatsConnection; ec: NatsConnection }> {
  const hub = await startProc(hubKind, {
    name: "HUB",
    config: `jetstream { store_dir: "${storeDir()}", domain: ${hubDomain} }\nleafnodes { listen: "${HOST}:{{leaf_port}}" }\n`,
  });
  const edge = await startProc(edgeKind, {
    name: "EDGE",
    config: `jetstream { store_dir: "${storeDir()}", domain: ${edgeDomain} }\nleafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`,
  });
  const hc = await client(hub);
  const ec = await client(edge);
  await waitForLink(ec, hc, logs(hub, edge));
  return { hub, edge, hc, ec };
}

/** Every answer to one request within `ms` (one, or none, is what nats-server gives). */
async function answers(nc: NatsConnection, subject: string, ms = 700): Promise<Record<string, unknown>[]> {
  const inbox = `_INBOX.domains.${Math.random().toString(36).slice(2)}`;
  const got: Record<string, unknown>[] = [];
  const sub = nc.subscribe(inbox, { callback: (_e, m) => got.push(JSON.parse(sc.decode(m.data)) as Record<string, unknown>) });
  await nc.flush();
  nc.publish(subject, sc.encode(""), { reply: inbox });
  await nc.flush();
  await new Promise((r) => setTimeout(r, ms));
  sub.unsubscribe();
  return got;
}

// The reference pair (nats-server on both sides) checks the test itself: it runs with NATTER_TEST_SERVER=nats-server.
const referencePair: [Kind, Kind][] = serverKind === "nats-server" ? [["nats-server", "nats-server"]] : [];
const pairs: [Kind, Kind][] = [["nats-server", "natter"], ["natter", "natter"], ["natter", "nats-server"], ...referencePair];

describe.skipIf(!HAS_NATS_SERVER)("JetStream domains across a leaf link", () => {
  for (const [hubKind, edgeKind] of pairs) {
    test(`hub ${hubKind} (domain hub) ↔ edge ${edgeKind} (domain edge): each domain's API from both sides, the plain API on its own side`, async () => {
      const { hub, edge, hc, ec } = await hubAndEdge(hubKind, edgeKind);
      const detail = logs(hub, edge);
      // The hub's client manages the edge's streams through the edge's domain (interest may take a moment).
      const edgeFromHub = await hc.jetstreamManager({ domain: "edge", timeout: 2000 }).catch(async () => {
        await waitFor("the edge's domain API from the hub", async () => (await answers(hc, "$JS.edge.API.INFO", 300)).length > 0, 10_000, detail);
        return hc.jetstreamManager({ domain: "edge" });
      });
      const created = await edgeFromHub.streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
      expect(created.config.name).toBe("TELEMETRY");
      expect((created as unknown as { domain?: string }).domain).toBeUndefined(); // nats-server's create answer has none
      expect((await edgeFromHub.streams.info("TELEMETRY") as unknown as { domain?: string }).domain).toBe("edge");
      // The edge's clients see it through the plain API and through their own domain's prefix.
      const local = await ec.jetstreamManager();
      expect((await local.streams.info("TELEMETRY")).config.subjects).toEqual(["telemetry.>"]);
      const [own] = await answers(ec, "$JS.edge.API.INFO");
      expect(own?.domain).toBe("edge");
      // A PubAck carries the domain.
      const ack = await ec.jetstream().publish("telemetry.t1", sc.encode("x"));
      expect(ack.domain).toBe("edge");
      expect(ack.seq).toBe(1);
      // The other way: the edge's client reaches the hub's domain.
      const hubFromEdge = await ec.jetstreamManager({ domain: "hub" });
      expect((await hubFromEdge.getAccountInfo()).domain).toBe("hub");
      await hubFromEdge.streams.add({ name: "COMMANDS", subjects: ["commands.>"] });
      await expect((await hc.jetstreamManager()).streams.info("COMMANDS")).resolves.toBeTruthy();
      // The plain API stays on each side: one answer, from the own domain.
      const plainHub = await answers(hc, "$JS.API.INFO");
      expect(plainHub.map((a) => a.domain)).toEqual(["hub"]);
      const plainEdge = await answers(ec, "$JS.API.INFO");
      expect(plainEdge.map((a) => a.domain)).toEqual(["edge"]);
      // Each domain's API answers once, from either side.
      expect((await answers(hc, "$JS.edge.API.INFO")).map((a) => a.domain)).toEqual(["edge"]);
      expect((await answers(ec, "$JS.hub.API.INFO")).map((a) => a.domain)).toEqual(["hub"]);
      expect((await answers(hc, "$JS.hub.API.INFO")).map((a) => a.domain)).toEqual(["hub"]);
      // The hub's own streams do not hold the edge's.
      const hubNames = await (await hc.jetstreamManager()).streams.names().next();
      expect(hubNames).toEqual(["COMMANDS"]);
      // KV through a domain: $JS.edge.API.$KV.> maps to $KV.> on the edge, direct gets too.
      const kv = await hc.jetstream({ domain: "edge" }).views.kv("settings", { history: 1 });
      await kv.put("rate", sc.encode("5"));
      expect(sc.decode((await kv.get("rate"))!.value)).toBe("5");
      const edgeKv = await ec.jetstream().views.kv("settings");
      expect(sc.decode((await edgeKv.get("rate"))!.value)).toBe("5");
      await expect((await hc.jetstreamManager()).streams.info("KV_settings")).rejects.toThrow(/stream not found/);
    }, 40_000);
  }

  for (const [hubKind, edgeKind] of [["nats-server", "natter"], ["natter", "natter"], ["natter", "nats-server"]] as [Kind, Kind][]) test(`the same domain on both sides: \`$JS.<domain>.API\` answers on each side only (hub ${hubKind}, edge ${edgeKind})`, async () => {
    const { hc, ec } = await hubAndEdge(hubKind, edgeKind, "one", "one");
    await (await ec.jetstreamManager()).streams.add({ name: "EDGE_ONLY", subjects: ["e.>"] });
    const fromHub = await answers(hc, "$JS.one.API.STREAM.NAMES");
    expect(fromHub.length).toBe(1);
    expect(fromHub[0]!.streams).toBeNull();
    const fromEdge = await answers(ec, "$JS.one.API.STREAM.NAMES");
    expect(fromEdge.map((a) => a.streams)).toEqual([["EDGE_ONLY"]]);
  }, 30_000);
});
