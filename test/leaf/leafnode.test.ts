// natter with nats-server's leafnode protocol, in the three pairings: natter leaf → nats-server hub,
// nats-server leaf → natter hub, natter leaf → natter hub. For each: pub/sub both ways (headers intact,
// no duplicates), queue groups across the link (one member per message, local members first, never
// both sides), request-reply both ways with no-responders, and a hub restart (the leaf reconnects,
// its interest is restored, messages flow again).
import { describe, expect, test, beforeAll } from "vitest";
import { ErrorCode, headers, StringCodec, type NatsConnection, type NatsError } from "nats";
import { HAS_NATS_SERVER, client, collect, logs, subject, waitForFlow, waitForLink } from "./helpers.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

const sc = StringCodec();

const HUB_CONFIG = `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`;
function leafConfig(hub: Proc): string {
  return `leafnodes {\n  reconnect: 1\n  remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ]\n}\n`;
}

const PAIRINGS: { leaf: Kind; hub: Kind }[] = [
  { leaf: "natter", hub: "nats-server" },
  { leaf: "nats-server", hub: "natter" },
  { leaf: "natter", hub: "natter" },
];

for (const { leaf: leafKind, hub: hubKind } of PAIRINGS) {
  const needsReference = leafKind === "nats-server" || hubKind === "nats-server";
  describe.skipIf(needsReference && !HAS_NATS_SERVER)(`${leafKind} leaf → ${hubKind} hub`, () => {
    let hub: Proc;
    let leaf: Proc;
    let hc: NatsConnection;
    let lc: NatsConnection;
    let detail: () => string;

    beforeAll(async () => {
      hub = await startProc(hubKind, { name: "HUB", config: HUB_CONFIG });
      leaf = await startProc(leafKind, { name: "LEAF", config: leafConfig(hub) });
      detail = logs(hub, leaf);
      hc = await client(hub, { reconnect: true });
      lc = await client(leaf);
      await waitForLink(lc, hc, detail);
    });

    test("pub/sub both ways: every message once, in order, headers intact", async () => {
      const toHub = subject("up");
      const toLeaf = subject("down");
      // Overlapping subscriptions on the receiving side: one message over the link, each subscription gets it.
      const hubLiteral = collect(hc, toHub);
      const hubWildcard = collect(hc, `${toHub.split(".").slice(0, -1).join(".")}.*`);
      const leafLiteral = collect(lc, toLeaf);
      const leafFull = collect(lc, `${toLeaf.split(".")[0]}.>`);
      await hc.flush();
      await lc.flush();
      await waitForFlow(lc, hc, "hub interest at the leaf", 10_000, detail);
      await waitForFlow(hc, lc, "leaf interest at the hub", 10_000, detail);
      const n = 200;
      for (let i = 0; i < n; i++) {
        const h = headers();
        h.set("Seq", String(i));
        h.append("Multi", "a");
        h.append("Multi", "b");
        lc.publish(toHub, sc.encode(`up-${i}`), { headers: h });
        hc.publish(toLeaf, sc.encode(`down-${i}`), i % 2 === 0 ? { reply: "reply.to.me" } : undefined);
      }
      await waitFor("every message on every subscription", () =>
        hubLiteral.count() >= n && hubWildcard.count() >= n && leafLiteral.count() >= n && leafFull.count() >= n, 10_000, detail);
      // No duplicates arrive late.
      await lc.flush();
      await hc.flush();
      for (const c of [hubLiteral, hubWildcard]) {
        expect(c.count()).toBe(n);
        expect(c.msgs.map((m) => sc.decode(m.data))).toEqual(Array.from({ length: n }, (_, i) => `up-${i}`));
        expect(c.msgs[7]!.headers?.get("Seq")).toBe("7");
        expect(c.msgs[7]!.headers?.values("Multi")).toEqual(["a", "b"]);
        expect(c.msgs[7]!.subject).toBe(toHub);
      }
      for (const c of [leafLiteral, leafFull]) {
        expect(c.count()).toBe(n);
        expect(c.msgs.map((m) => sc.decode(m.data))).toEqual(Array.from({ length: n }, (_, i) => `down-${i}`));
        expect(c.msgs[4]!.reply).toBe("reply.to.me");
        expect(c.msgs[5]!.reply).toBe("");
        expect(c.msgs[4]!.headers).toBeUndefined();
      }
    });

    test("queue groups: one member per message, local members first, never both sides", async () => {
      const subj = subject("work");
      // Only the leaf has members at first: the hub must learn the group's interest.
      const leafMembers = [collect(lc, subj, "q"), collect(lc, subj, "q")];
      const leafPlain = collect(lc, subj);
      await lc.flush();
      await waitFor("the leaf's queue group to be known at the hub", async () => {
        hc.publish(subj, sc.encode("warmup"));
        await hc.flush();
        return leafMembers[0]!.count() + leafMembers[1]!.count() > 0;
      }, 10_000, detail);
      const hubMembers = [collect(hc, subj, "q"), collect(hc, subj, "q")];
      const hubPlain = collect(hc, subj);
      await hc.flush();
      await waitFor("the hub's plain interest at the leaf", async () => {
        lc.publish(subj, sc.encode("warmup"));
        await lc.flush();
        return hubPlain.count() > 0;
      }, 10_000, detail);
      // Warm-up messages may arrive late: each phase counts its own payloads (prefix) only.
      const got = (list: { msgs: { data: Uint8Array }[] }[], prefix: string) =>
        list.flatMap((c) => c.msgs.map((m) => sc.decode(m.data)).filter((p) => p.startsWith(prefix)));
      const n = 200;
      const all = (prefix: string) => new Set(Array.from({ length: n }, (_, i) => `${prefix}${i}`));

      // Published at the hub, members on both sides: the hub's own members get every message.
      for (let i = 0; i < n; i++) hc.publish(subj, sc.encode(`h${i}`));
      await hc.flush();
      await waitFor("hub members to get all", () => got(hubMembers, "h").length >= n && got([leafPlain], "h").length >= n, 10_000, detail);
      await lc.flush();
      await hc.flush();
      expect(got(hubMembers, "h").length).toBe(n);
      expect(new Set(got(hubMembers, "h"))).toEqual(all("h"));
      expect(got(leafMembers, "h")).toEqual([]);
      expect(got([leafPlain], "h").length).toBe(n); // the plain subscriber on the other side still gets each once

      // Published at the leaf, members on both sides: the leaf's own members get every message.
      for (let i = 0; i < n; i++) lc.publish(subj, sc.encode(`l${i}`));
      await lc.flush();
      await waitFor("leaf members to get all", () => got(leafMembers, "l").length >= n && got([hubPlain], "l").length >= n, 10_000, detail);
      await hc.flush();
      await lc.flush();
      expect(got(leafMembers, "l").length).toBe(n);
      expect(got(hubMembers, "l")).toEqual([]);
      expect(got([hubPlain], "l").length).toBe(n);

      // The hub's members leave: messages published at the hub cross to the leaf's members, once each.
      for (const m of hubMembers) m.sub.unsubscribe();
      await hc.flush();
      for (let i = 0; i < n; i++) hc.publish(subj, sc.encode(`x${i}`));
      await hc.flush();
      await waitFor("leaf members to get all", () => got(leafMembers, "x").length >= n && got([leafPlain], "x").length >= n, 10_000, detail);
      await lc.flush();
      await hc.flush();
      expect(got(leafMembers, "x").length).toBe(n);
      expect(new Set(got(leafMembers, "x"))).toEqual(all("x"));
      expect(got([leafPlain], "x").length).toBe(n);
      // Both members took part (random choice among them).
      expect(leafMembers.every((m) => got([m], "x").length > 0)).toBe(true);

      // And the other way: the leaf's members leave, a hub member joins; the leaf's publishes cross to it.
      const hubMember = collect(hc, subj, "q");
      await hc.flush();
      for (const m of leafMembers) m.sub.unsubscribe();
      await lc.flush();
      await waitFor("the hub's new member to be known at the leaf", async () => {
        lc.publish(subj, sc.encode("warmup"));
        await lc.flush();
        return hubMember.count() > 0;
      }, 10_000, detail);
      // Warm-up messages may still be arriving: count this phase's payloads only.
      const ys = () => hubMember.msgs.filter((m) => sc.decode(m.data).startsWith("y")).length;
      const hubPlainYs = () => hubPlain.msgs.filter((m) => sc.decode(m.data).startsWith("y")).length;
      for (let i = 0; i < n; i++) lc.publish(subj, sc.encode(`y${i}`));
      await lc.flush();
      await waitFor("the hub member to get all", () => ys() >= n && hubPlainYs() >= n, 10_000, detail);
      await hc.flush();
      expect(ys()).toBe(n);
      expect(hubPlainYs()).toBe(n);
    });

    test("request-reply both ways; no responders answered at once, on either side", async () => {
      const atHub = subject("svc.hub");
      const atLeaf = subject("svc.leaf");
      hc.subscribe(atHub, { callback: (_e, m) => m.respond(sc.encode(`hub:${sc.decode(m.data)}`)) });
      lc.subscribe(atLeaf, {
        callback: (_e, m) => {
          const h = headers();
          h.set("From", "leaf");
          m.respond(sc.encode(`leaf:${sc.decode(m.data)}`), { headers: h });
        },
      });
      await hc.flush();
      await lc.flush();
      await waitFor("both services reachable across the link", async () => {
        try {
          await lc.request(atHub, sc.encode("ping"), { timeout: 500 });
          await hc.request(atLeaf, sc.encode("ping"), { timeout: 500 });
          return true;
        } catch {
          return false;
        }
      }, 10_000, detail);
      for (let i = 0; i < 20; i++) {
        expect(sc.decode((await lc.request(atHub, sc.encode(`${i}`), { timeout: 2000 })).data)).toBe(`hub:${i}`);
        const r = await hc.request(atLeaf, sc.encode(`${i}`), { timeout: 2000 });
        expect(sc.decode(r.data)).toBe(`leaf:${i}`);
        expect(r.headers?.get("From")).toBe("leaf");
      }
      // Nobody anywhere: a 503 at once (well before the timeout), from either side.
      for (const nc of [lc, hc]) {
        const started = Date.now();
        const error = await nc.request(subject("nobody"), sc.encode("?"), { timeout: 5000 }).then(() => null, (e: NatsError) => e);
        expect(error?.code).toBe(ErrorCode.NoResponders);
        expect(Date.now() - started).toBeLessThan(2500);
      }
    });

    test("the hub restarts: the leaf reconnects, its interest is restored, messages flow both ways again", async () => {
      const toLeaf = subject("after.down");
      const leafSub = collect(lc, toLeaf); // made before the restart: the leaf must send it again
      await lc.flush();
      await waitForFlow(hc, lc, "the leaf's interest before the restart", 10_000, detail);
      await hub.restart();
      const hc2 = await client(hub);
      await waitFor("the leaf's old subscription to work through the restarted hub", async () => {
        hc2.publish(toLeaf, sc.encode("again"));
        await hc2.flush();
        return leafSub.msgs.some((m) => sc.decode(m.data) === "again");
      }, 15_000, detail);
      await waitForLink(lc, hc2, detail);
      // The reconnection is logged by the leaf.
      if (leafKind === "natter") expect(leaf.log()).toMatch(/Leafnode connection created for account: \$G/);
      hc = hc2;
    });
  });
}

describe("leafnodes { min_version }", () => {
  const hubs: Kind[] = HAS_NATS_SERVER ? ["natter", "nats-server"] : ["natter"];

  test.each(hubs)("%s hub with min_version 2.10.0: a 2.10 leaf (natter) links, a nats-server 2.9.10 leaf is refused", async (kind) => {
    const hub = await startProc(kind, { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}", min_version: "2.10.0" }\n` });
    const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n` });
    const [h, l] = await Promise.all([client(hub), client(leaf)]);
    await waitForFlow(l, h, "natter leaf → hub", 15_000, logs(hub, leaf));
    if (!HAS_NATS_SERVER) return;
    const old = await startProc("nats-server", { name: "OLD", config: `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n` });
    await waitFor("the 2.9.10 leaf refused", () => /minimum version required is "2\.10\.0"/.test(old.log()), 15_000, logs(hub, old));
    expect(hub.log()).toMatch(/connection rejected since minimum version required is "2\.10\.0"/);
  });
});
