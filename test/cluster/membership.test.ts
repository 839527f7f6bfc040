// Where the gossip protocol runs (src/cluster/membership.ts): on its own thread by default, on the
// event loop where no Worker can start (forced here with NATTER_GOSSIP_THREAD=0). Both kinds of node
// form one cluster, see each other's failures and graceful leaves, and report the same stats line.
import { expect, test } from "vitest";
import { startNode, waitFor, waitForMesh } from "./spawn.ts";

test("a node with the gossip thread and one without form a cluster, detect a kill and a graceful leave", async () => {
  const a = await startNode({ name: "T" });
  const b = await startNode({ name: "L", seeds: [a.clusterPort], env: { NATTER_GOSSIP_THREAD: "0" } });
  const c = await startNode({ name: "T2", seeds: [b.clusterPort] });
  await waitForMesh([a, b, c]);
  await waitFor("the log lines", () => a.log().includes("Cluster: gossip runs on its own thread") && b.log().includes("Cluster: gossip runs on the event loop"));
  expect(c.log()).toContain("Cluster: gossip runs on its own thread");
  // The thread's stats reach the main thread's periodic debug line.
  await waitFor("a gossip stats line with traffic", () => /Gossip stats: members_up=2 routes=2 sent_msgs=[1-9]/.test(a.log()), 15_000);

  // kill -9: the threaded node declares the other dead by probing (no leave message).
  await b.kill9();
  await waitFor("T drops L", () => a.log().includes(`Cluster member ${b.id} (L) is gone`), 15_000);
  // A graceful stop: the thread sends its leave before the process exits.
  const before = Date.now();
  await a.stop();
  await waitFor("T2 hears T leave", () => c.log().includes(`Cluster member ${a.id} (T) is gone`), 15_000);
  expect(Date.now() - before).toBeLessThan(2500); // well under failure detection (probe + suspicion ≈ 2.5 s)
}, 60_000);
