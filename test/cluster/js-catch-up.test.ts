// A replica that was down while large messages were published catches up (issue 13): the leader sends it
// what it missed in appends that each fit a route frame (max_payload + 256 KB), whatever the number and size
// of the entries. (Appends were bounded in entries only: ten 400 KB messages went in one 4 MB append, the
// follower's route refused the frame and closed, and the replica never caught up.)
// Passes against nats-server 2.9.10 too (NATTER_TEST_SERVER=nats-server).
import { expect, test } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "./spawn.ts";
import { client, threeJetStreamNodes } from "./js-cluster.ts";

test("a replica that missed large messages catches up", async () => {
  const nodes = await threeJetStreamNodes();
  const admin = await client(nodes[0]!);
  const jsm = await jetstreamManager(admin, { timeout: 5000 });
  const created = await jsm.streams.add({ name: "BIG", subjects: ["big.>"], num_replicas: 3 });
  const leaderName = created.cluster!.leader!;
  const leader = nodes.find((n) => n.name === leaderName)!;
  const away = nodes.find((n) => n !== leader && n !== nodes[0])!;
  await away.kill9();
  const nc = await client(leader);
  const js = jetstream(nc, { timeout: 10_000 });
  const body = new Uint8Array(400 * 1024).fill(7);
  for (let i = 0; i < 10; i++) await js.publish(`big.${i}`, body);
  await away.start();
  // As the leader sees it: the restarted replica reachable and with nothing left to catch up.
  await waitFor("the restarted replica current, nothing to catch up", async () => {
    const info = await jsm.streams.info("BIG").catch(() => null);
    const replica = info?.cluster?.replicas?.find((r) => r.name === away.name);
    return info?.state.messages === 10 && replica?.current === true && (replica.lag ?? 0) === 0;
  }, 20_000);
  expect((await jsm.streams.info("BIG")).state.bytes).toBeGreaterThan(10 * body.length);
});
