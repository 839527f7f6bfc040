// The membership protocol alone (src/cluster/gossip.ts), many members in one process over a simulated
// datagram network that can drop a member or cut the network in two: joining from one seed, failure
// detection, rejoining after a restart, partitions that heal, and what goes on the wire.
import { afterEach, describe, expect, test } from "vitest";
import { encode } from "@msgpack/msgpack";
import { Gossip, MemberState, type GossipTiming } from "../../src/cluster/gossip.ts";
import { PROTOCOL_VERSION } from "../../src/cluster/protocol.ts";
import { waitFor } from "./spawn.ts";

const FAST: GossipTiming = {
  probeIntervalMs: 50,
  probeTimeoutMs: 20,
  indirectChecks: 3,
  suspicionMult: 4,
  syncIntervalMs: 200,
  deadRetentionMs: 60_000,
  retransmitMult: 4,
  maxPiggyback: 8,
  gossipIntervalMs: 20,
  gossipFanout: 3,
};

const quiet = { info() {}, warn() {}, debug() {} };

/** A datagram network between in-process members: each member can be taken down, and links cut. */
class Network {
  readonly nodes = new Map<string, Gossip>();
  readonly down = new Set<string>();
  /** Member id → partition number; members in different partitions cannot reach each other. */
  readonly side = new Map<string, number>();
  readonly logs = new Map<string, string[]>();
  private all: Gossip[] = [];

  add(id: string, seeds: string[], clusterName = "sim"): Gossip {
    const lines: string[] = [];
    this.logs.set(id, lines);
    const log = { info: (t: string) => lines.push(t), warn: (t: string) => lines.push(t), debug() {} };
    const g = new Gossip(id, { sid: `${id}-${Date.now()}`, name: id, urls: [`${id}-client`], ws: [] }, clusterName, seeds,
      (to, bytes) => this.deliver(id, to, bytes), { up() {}, down() {}, changed() {} }, log, FAST);
    this.nodes.set(id, g);
    this.all.push(g);
    this.down.delete(id);
    g.start();
    return g;
  }

  private deliver(from: string, to: string, bytes: Uint8Array): void {
    if (this.down.has(from) || this.down.has(to)) return;
    if ((this.side.get(from) ?? 0) !== (this.side.get(to) ?? 0)) return;
    const copy = bytes.slice();
    setTimeout(() => {
      if (this.down.has(to)) return;
      this.nodes.get(to)?.receive(copy, from);
    }, Math.random() * 2);
  }

  /** Crash: the member stops answering (no goodbye). */
  crash(id: string): void {
    this.down.add(id);
    this.nodes.get(id)?.stop();
  }

  /** What `viewer` thinks of every other running member: ids it holds up. */
  upIds(viewer: string): string[] {
    return this.nodes.get(viewer)!.upMembers().map((m) => m.id).sort();
  }

  converged(ids: string[]): boolean {
    return ids.every((v) => {
      const expected = ids.filter((x) => x !== v).sort();
      const got = this.upIds(v);
      return got.length === expected.length && got.every((x, i) => x === expected[i]) &&
        this.nodes.get(v)!.upMembers().every((m) => m.state === MemberState.ALIVE);
    });
  }

  stopAll(): void {
    for (const g of this.all) g.stop();
  }
}

let net: Network;
afterEach(() => net?.stopAll());

describe("gossip membership", () => {
  test("every member learns every member from one seed each (a chain)", async () => {
    net = new Network();
    const ids = Array.from({ length: 10 }, (_, i) => `m${i}:1`);
    ids.forEach((id, i) => net.add(id, i === 0 ? [] : [ids[i - 1]!]));
    await waitFor("a converged view", () => net.converged(ids), 5000, () => ids.map((v) => `${v}: ${net.upIds(v).join(",")}`).join("\n"));
  });

  test("a crashed member is declared dead by all within the suspicion bound; the others stay", async () => {
    net = new Network();
    const ids = Array.from({ length: 5 }, (_, i) => `m${i}:1`);
    ids.forEach((id, i) => net.add(id, i === 0 ? [] : [ids[0]!]));
    await waitFor("converged", () => net.converged(ids), 5000);
    const t0 = Date.now();
    net.crash("m3:1");
    const rest = ids.filter((x) => x !== "m3:1");
    await waitFor("m3 dead everywhere", () => net.converged(rest), 5000);
    // probe interval + timeout + suspicion (4 × 50 ms) + dissemination: well under a second here.
    expect(Date.now() - t0).toBeLessThan(1500);
    for (const v of rest) expect(net.nodes.get(v)!.members.get("m3:1")!.state).toBe(MemberState.DEAD);
  });

  test("a restarted member rejoins with a higher incarnation, though its seed thinks it dead", async () => {
    net = new Network();
    const ids = ["a:1", "b:1", "c:1"];
    ids.forEach((id, i) => net.add(id, i === 0 ? [] : ["a:1"]));
    await waitFor("converged", () => net.converged(ids), 5000);
    const oldInc = net.nodes.get("c:1")!.inc;
    net.crash("c:1");
    await waitFor("c dead", () => net.converged(["a:1", "b:1"]), 5000);
    await new Promise((r) => setTimeout(r, 5));
    const c = net.add("c:1", ["a:1"]);
    expect(c.inc).toBeGreaterThan(oldInc);
    await waitFor("c back everywhere", () => net.converged(ids), 5000);
    expect(net.nodes.get("a:1")!.members.get("c:1")!.inc).toBe(c.inc);
  });

  test("a member falsely suspected refutes it (incarnation + 1)", async () => {
    net = new Network();
    const ids = ["a:1", "b:1", "c:1"];
    ids.forEach((id, i) => net.add(id, i === 0 ? [] : ["a:1"]));
    await waitFor("converged", () => net.converged(ids), 5000);
    const b = net.nodes.get("b:1")!;
    const before = b.inc;
    // a hears a rumour that b is suspect at b's own incarnation.
    const rumour = encode({ v: PROTOCOL_VERSION, c: "sim", t: 2, f: "c:1", fi: net.nodes.get("c:1")!.inc, s: 0, u: [{ i: "b:1", n: before, s: MemberState.SUSPECT }] });
    net.nodes.get("a:1")!.receive(rumour, "c:1");
    await waitFor("b to refute", () => b.inc > before && net.converged(ids), 5000);
  });

  test("a partition into 3 and 2 heals: both sides see everyone alive again", async () => {
    net = new Network();
    const ids = Array.from({ length: 5 }, (_, i) => `p${i}:1`);
    ids.forEach((id, i) => net.add(id, i === 0 ? [] : [ids[0]!]));
    await waitFor("converged", () => net.converged(ids), 5000);
    for (const id of ids.slice(3)) net.side.set(id, 1);
    await waitFor("each side to drop the other", () => net.converged(ids.slice(0, 3)) && net.converged(ids.slice(3)), 5000);
    net.side.clear();
    await waitFor("the views to merge again", () => net.converged(ids), 10_000, () => ids.map((v) => `${v}: ${net.upIds(v).join(",")}`).join("\n"));
  });

  test("messages of another cluster or protocol version are dropped, with one log line per sender", () => {
    net = new Network();
    const a = net.add("a:1", []);
    const other = encode({ v: PROTOCOL_VERSION, c: "other", t: 4, f: "x:1", fi: 1, m: [{ i: "x:1", n: 1, s: 0 }], r: false });
    const future = encode({ v: PROTOCOL_VERSION + 1, c: "sim", t: 4, f: "y:1", fi: 1, m: [{ i: "y:1", n: 1, s: 0 }], r: false });
    for (let i = 0; i < 3; i++) {
      a.receive(other, "x:1");
      a.receive(future, "y:1");
      a.receive(new Uint8Array([0xc1, 1, 2]), "z:1");
    }
    expect(a.upMembers()).toEqual([]);
    const lines = net.logs.get("a:1")!;
    expect(lines.filter((l) => l.includes('cluster name "other" does not match "sim"'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes(`protocol version ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}`))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("not a natter gossip message"))).toHaveLength(1);
  });
});
