// KV at a few thousand keys: keys(), watch and history stay exact (pending counts drive them) and quick.
import { Kvm } from "@nats-io/kv";
import { expect, test } from "vitest";
import { connectJs, startJs } from "./helpers.ts";

test("5000 keys: keys() lists each once, a watch sees every current value, in well under the deadline", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  const kv = await new Kvm(c.nc).create("scale", { history: 2 });
  const puts: Promise<number>[] = [];
  for (let i = 0; i < 5000; i++) puts.push(kv.put(`key.${i}`, `v${i}`));
  for (let i = 0; i < 1000; i++) puts.push(kv.put(`key.${i}`, `w${i}`)); // second revision for some
  await Promise.all(puts);
  const t0 = performance.now();
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  const keysMs = performance.now() - t0;
  expect(keys.length).toBe(5000);
  expect(new Set(keys).size).toBe(5000);
  const seen = new Map<string, string>();
  const w = await kv.watch();
  for await (const e of w) {
    seen.set(e.key, e.string());
    if (seen.size === 5000) break;
  }
  expect(seen.get("key.1")).toBe("w1");
  expect(seen.get("key.4999")).toBe("v4999");
  expect(keysMs).toBeLessThan(10_000);
}, 60_000);
