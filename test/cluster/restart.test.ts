// A node restarted after `kill -9` is whole again as soon as it has joined (issue 18, item 4): it dials
// every member it learns of at once, whichever id is lower, instead of waiting for the others to notice it
// is back (a gossip round or two) or to wait out the dial backoff its absence built up. Whether a route
// comes from its dial or the other's is a race (the lower id's route is kept), and how soon is timing, so
// this checks the outcome; test/cluster/restart-measure.ts measures the time (~190 → ~80 ms).
import { expect, test } from "vitest";
import * as nats from "nats";
import { routeUp, startCluster, waitFor, waitForMesh } from "./spawn.ts";

test("the node with the highest id, restarted after kill -9, is whole again: routes to every member, messages both ways", { timeout: 60_000 }, async () => {
  const nodes = await startCluster(3);
  // The node with the highest id: before, it never dialed the others (the lower id dials; it only fell
  // back to dialing after 2 s), so it had to wait for them.
  const victim = [...nodes].sort((a, b) => (a.id < b.id ? 1 : -1))[0]!;
  const others = nodes.filter((n) => n !== victim);
  await victim.kill9();
  await waitFor("the others to see the route close", () => others.every((o) => !routeUp(o, victim)));
  const began = Date.now();
  await victim.start();
  await waitForMesh(nodes, 15_000);
  console.log(`restarted node whole again ${Date.now() - began} ms after its spawn (harness polling included)`);
  // Messages cross both ways between the restarted node and each other member.
  for (const o of others) {
    const a = await nats.connect({ servers: victim.hostport, reconnect: false });
    const b = await nats.connect({ servers: o.hostport, reconnect: false });
    try {
      const got: string[] = [];
      a.subscribe("r.to-victim", { callback: (_e, m) => got.push(`victim:${new TextDecoder().decode(m.data)}`) });
      b.subscribe("r.to-other", { callback: (_e, m) => got.push(`other:${new TextDecoder().decode(m.data)}`) });
      await a.flush();
      await b.flush();
      await waitFor(`messages both ways between ${victim.name} and ${o.name}`, async () => {
        b.publish("r.to-victim", new TextEncoder().encode("x"));
        a.publish("r.to-other", new TextEncoder().encode("y"));
        await a.flush();
        await b.flush();
        await new Promise((r) => setTimeout(r, 20));
        return got.includes("victim:x") && got.includes("other:y");
      });
    } finally {
      await a.close();
      await b.close();
    }
  }
  expect(others.every((o) => routeUp(victim, o) && routeUp(o, victim))).toBe(true);
});
