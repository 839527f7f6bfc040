// Several edges sourced into one hub stream (issue 14, scenario 1 with many edges): each edge in its own
// domain, the hub killed while they keep acknowledging; the hub's stream has each edge's messages once,
// in that edge's order.
import { describe, expect, test } from "vitest";
import { contents, sc, startEdge, startHub } from "./edge-helpers.ts";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { waitFor, type Kind } from "./spawn.ts";

describe.skipIf(!HAS_NATS_SERVER)("several edges into one hub stream", () => {
  for (const hubKind of ["nats-server", "natter"] as Kind[]) {
    test(`hub ${hubKind}: ALL_TELEMETRY sources three natter edges (domains edge1-3) through a hub outage: each edge's messages once, in its order`, async () => {
      const hub = await startHub(hubKind);
      const edges = await Promise.all([1, 2, 3].map((n) => startEdge("natter", hub, `EDGE${n}`, `edge${n}`)));
      const detail = logs(hub, ...edges);
      const ecs = await Promise.all(edges.map((e) => client(e)));
      let hc = await client(hub);
      // Each edge its own subjects: a stream's capture is interest like any other, and crosses the links
      // (with `telemetry.>` everywhere, every edge's stream would take every edge's messages).
      for (const [k, ec] of ecs.entries()) {
        await waitForLink(ec, hc, detail);
        await (await ec.jetstreamManager()).streams.add({ name: "TELEMETRY", subjects: [`telemetry.e${k + 1}.>`] });
      }
      const sources = [1, 2, 3].map((n) => ({ name: "TELEMETRY", external: { api: `$JS.edge${n}.API`, deliver: "" } }));
      await (await hc.jetstreamManager()).streams.add({ name: "ALL_TELEMETRY", sources });
      const publish = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          for (const [k, ec] of ecs.entries()) await ec.jetstream().publish(`telemetry.e${k + 1}.t`, sc.encode(`e${k + 1}-${i}`));
        }
      };
      await publish(0, 20);
      await hub.kill9();
      await publish(20, 60);
      await hub.start();
      hc = await client(hub);
      const hjsm = await hc.jetstreamManager();
      await waitFor("180 messages in the hub's stream", async () => (await hjsm.streams.info("ALL_TELEMETRY")).state.messages >= 180, 25_000, detail);
      const { data } = await contents(hjsm, "ALL_TELEMETRY");
      expect(data.length).toBe(180);
      for (const k of [1, 2, 3]) expect(data.filter((d) => d.startsWith(`e${k}-`))).toEqual(Array.from({ length: 60 }, (_, i) => `e${k}-${i}`));
      const info = await hjsm.streams.info("ALL_TELEMETRY");
      expect(info.sources?.length).toBe(3);
    }, 40_000);
  }
});
