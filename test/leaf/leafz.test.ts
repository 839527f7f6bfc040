// /leafz and the leaf parts of /varz, side by side with nats-server: a natter leaf → natter hub and a
// nats-server leaf → nats-server hub get the same interest and traffic, then both hubs' and both leaves'
// endpoints are compared field by field (test/monitor/shape.ts), and natter's values checked.
// name and is_spoke are v2.10.0 fields that nats-server 2.9.10 does not write. A nats-server leaf
// also sends interest in its $SYS account-ping imports, which a natter leaf has not: left out of the
// comparison of subscription lists.
import { describe, expect, test } from "vitest";
import { StringCodec, type NatsConnection } from "nats";
import { freePort } from "../harness/server.ts";
import { shapeDiff } from "../monitor/shape.ts";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

type Json = Record<string, any>;
const sc = StringCodec();
const LEAFZ_EXTRA = ["leafs[].name", "leafs[].is_spoke"];

interface Pair {
  hub: Proc;
  leaf: Proc;
  hubHttp: number;
  leafHttp: number;
  hc: NatsConnection;
  lc: NatsConnection;
}

async function pair(kind: Kind): Promise<Pair> {
  const hubHttp = await freePort();
  const leafHttp = await freePort();
  const hub = await startProc(kind, { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`, args: ["-m", String(hubHttp)] });
  const leaf = await startProc(kind, {
    name: "LEAF",
    config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`,
    args: ["-m", String(leafHttp)],
  });
  const hc = await client(hub);
  const lc = await client(leaf);
  await waitForLink(lc, hc, logs(hub, leaf));
  return { hub, leaf, hubHttp, leafHttp, hc, lc };
}

/** The same interest and traffic on both pairs: 2 subjects at the hub (one a queue group), 1 at the leaf, 10 messages each way. */
async function workload(p: Pair): Promise<void> {
  let atHub = 0;
  let atLeaf = 0;
  p.hc.subscribe("leafz.up", { callback: () => atHub++ });
  p.hc.subscribe("leafz.q", { queue: "workers", callback: () => {} });
  p.lc.subscribe("leafz.down", { callback: () => atLeaf++ });
  await Promise.all([p.hc.flush(), p.lc.flush()]);
  await waitFor("interest both ways", async () => {
    const [h, l] = await Promise.all([getJson(p.hubHttp, "/leafz?subs=1"), getJson(p.leafHttp, "/leafz?subs=1")]);
    const hubSubs: string[] = h.leafs?.[0]?.subscriptions_list ?? [];
    const leafSubs: string[] = l.leafs?.[0]?.subscriptions_list ?? [];
    return hubSubs.includes("leafz.down") && leafSubs.includes("leafz.up") && leafSubs.includes("leafz.q");
  }, 10_000, logs(p.hub, p.leaf));
  for (let i = 0; i < 10; i++) {
    p.lc.publish("leafz.up", sc.encode("0123456789"));
    p.hc.publish("leafz.down", sc.encode("01234"));
  }
  await waitFor("the messages to cross", () => atHub === 10 && atLeaf === 10, 10_000, logs(p.hub, p.leaf));
  // A PING round trip on each link: rtt is measured.
  await waitFor("an rtt", async () => (await getJson(p.hubHttp, "/leafz")).leafs?.[0]?.rtt !== "0s", 10_000);
}

async function getJson(port: number, path: string): Promise<Json> {
  const res = await fetch(`http://${HOST}:${port}${path}`);
  return (await res.json()) as Json;
}

describe.skipIf(!HAS_NATS_SERVER)("/leafz against nats-server", () => {
  test("same fields and JSON types on the hub and on the leaf; natter's values", async () => {
    const ours = await pair("natter");
    const ref = await pair("nats-server");
    await Promise.all([workload(ours), workload(ref)]);
    for (const [side, path] of [["hub", "/leafz?subs=1"], ["hub", "/leafz"], ["leaf", "/leafz?subs=1"]] as const) {
      const port = (p: Pair) => (side === "hub" ? p.hubHttp : p.leafHttp);
      const [r, o] = await Promise.all([getJson(port(ref), path), getJson(port(ours), path)]);
      expect({ side, path, diff: shapeDiff(r, o, { extra: LEAFZ_EXTRA }) }).toEqual({ side, path, diff: [] });
      expect(o.leafnodes).toBe(1);
      const [rl, ol] = [r.leafs[0], o.leafs[0]];
      for (const k of ["account", "ip", "in_msgs", "out_msgs", "in_bytes", "out_bytes"]) {
        expect({ side, k, v: ol[k] }).toEqual({ side, k, v: rl[k] });
      }
      if (path.includes("subs")) {
        // A nats-server leaf also exports its $SYS account-ping imports; the $LDS subject is random.
        const norm = (list: string[]) => list.filter((x) => !x.startsWith("$SYS.")).map((x) => (x.startsWith("$LDS.") ? "$LDS" : x)).sort();
        expect({ side, subs: norm(ol.subscriptions_list) }).toEqual({ side, subs: norm(rl.subscriptions_list) });
        expect(ol.subscriptions).toBe(ol.subscriptions_list.length);
      } else {
        expect(ol.subscriptions_list).toBeUndefined();
      }
      expect(ol.name).toBe(side === "hub" ? "LEAF" : "HUB");
      expect(ol.is_spoke).toBe(side === "leaf");
      expect(ol.rtt).toMatch(/^(\d+(\.\d+)?(ns|µs|ms|s))$/);
    }
  });

  test("/varz: leafnodes count and the leaf block, as nats-server", async () => {
    const ours = await pair("natter");
    const ref = await pair("nats-server");
    for (const side of ["hub", "leaf"] as const) {
      const port = (p: Pair) => (side === "hub" ? p.hubHttp : p.leafHttp);
      const [r, o] = await Promise.all([getJson(port(ref), "/varz"), getJson(port(ours), "/varz")]);
      expect({ side, diff: shapeDiff(r.leaf, o.leaf) }).toEqual({ side, diff: [] });
      expect({ side, leafnodes: o.leafnodes }).toEqual({ side, leafnodes: r.leafnodes });
      expect(o.leafnodes).toBe(1);
      if (side === "hub") expect(o.leaf).toMatchObject({ host: HOST, port: ours.hub.leafPort, auth_timeout: r.leaf.auth_timeout, tls_timeout: r.leaf.tls_timeout });
      else expect(o.leaf).toEqual({ remotes: [{ local_account: "$G", urls: [`${HOST}:${ours.hub.leafPort}`] }] });
    }
  });

  test("no leaf connections: leafs is null, as nats-server", async () => {
    const http = await freePort();
    await startProc("natter", { name: "ALONE", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`, args: ["-m", String(http)] });
    const o = await getJson(http, "/leafz");
    expect(o).toMatchObject({ leafnodes: 0, leafs: null });
    expect(typeof o.server_id).toBe("string");
  });
});
