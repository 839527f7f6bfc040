// Crash safety: the server is killed with SIGKILL while a publisher has acks outstanding. After a
// restart every acknowledged message is there exactly once, under the sequence its PubAck named,
// and the stream still takes writes.
import type { PubAck } from "@nats-io/jetstream";
import { expect, test } from "vitest";
import { connectJs, dec, enc, startJs, until } from "./helpers.ts";

test("kill -9 with publishes in flight: every acked message survives exactly once", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "CRASH", subjects: ["crash.>"] });
  const acked = new Map<string, number>(); // payload id → acked sequence
  let next = 0;
  let killed = false;
  // Keep ~256 publishes in flight; kill the server once a few thousand are acknowledged.
  const inFlight = new Set<Promise<void>>();
  const publishOne = () => {
    const id = `msg-${next++}`;
    const p: Promise<void> = c.js
      .publish(`crash.${next % 7}`, enc(id), { timeout: 5_000 })
      .then((ack: PubAck) => {
        acked.set(id, ack.seq);
      })
      .catch(() => {}) // unacknowledged: may or may not be stored
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const pump = (async () => {
    while (!killed) {
      while (inFlight.size < 256 && !killed) publishOne();
      await Promise.race(inFlight);
    }
  })();
  await until(() => acked.size >= 3_000, 20_000, "3000 acks");
  killed = true;
  await server.kill9();
  await pump;
  await Promise.allSettled([...inFlight]);
  const ackedCount = acked.size;
  expect(ackedCount).toBeGreaterThanOrEqual(3_000);
  // (Usually some publishes were still waiting for their ack; on a fast server all may be in.)

  await server.restart();
  const d = await connectJs(server);
  const info = await d.jsm.streams.info("CRASH");
  const total = info.state.messages;
  expect(total).toBeGreaterThanOrEqual(ackedCount);
  const oc = await d.js.consumers.get("CRASH");
  const seen = new Map<string, number[]>();
  const iter = await oc.fetch({ max_messages: total, expires: 10_000 });
  for await (const m of iter) {
    const id = dec(m.data);
    seen.set(id, [...(seen.get(id) ?? []), m.seq]);
    if (m.info.pending === 0) break;
  }
  for (const [id, seq] of acked) expect(seen.get(id), id).toEqual([seq]);
  for (const seqs of seen.values()) expect(seqs.length).toBe(1);
  const after = await d.js.publish("crash.after", enc("after"));
  expect(after.seq).toBe(info.state.last_seq + 1);
}, 60_000);
