// Key-value buckets through the official @nats-io/kv client against the real server process.
import { Kvm, type KvEntry } from "@nats-io/kv";
import { describe, expect, test } from "vitest";
import { connectJs, dec, startJs, until } from "./helpers.ts";

async function kvm() {
  const server = await startJs();
  const c = await connectJs(server);
  return { server, ...c, kvm: new Kvm(c.nc) };
}

async function drain<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of iter) out.push(v);
  return out;
}

describe("kv", () => {
  test("create/open, put/get, create and update with revisions (CAS), delete, purge", async () => {
    const { kvm: m, jsm } = await kvm();
    const kv = await m.create("cfg", { history: 3 });
    const si = await jsm.streams.info("KV_cfg");
    expect(si.config).toMatchObject({
      subjects: ["$KV.cfg.>"], max_msgs_per_subject: 3, allow_rollup_hdrs: true, allow_direct: true, discard: "new",
    });
    const r1 = await kv.put("a.b", "one");
    expect(r1).toBe(1);
    const e = (await kv.get("a.b"))!;
    expect(e.string()).toBe("one");
    expect(e.revision).toBe(1);
    expect(e.operation).toBe("PUT");
    expect(await kv.get("missing")).toBeNull();
    await expect(kv.create("a.b", "again")).rejects.toThrow(/wrong last sequence/);
    const r2 = await kv.update("a.b", "two", r1);
    expect(r2).toBe(2);
    await expect(kv.update("a.b", "stale", r1)).rejects.toThrow(/wrong last sequence: 2/);
    await kv.delete("a.b");
    const deleted = await kv.get("a.b");
    expect(deleted === null || deleted.operation === "DEL").toBe(true);
    // create() succeeds over a deleted key
    expect(await kv.create("a.b", "three")).toBe(4);
    await kv.purge("a.b");
    const hist = await drain(await kv.history({ key: "a.b" }));
    expect(hist.map((h) => h.operation)).toEqual(["PURGE"]);
    const opened = await m.open("cfg");
    expect((await opened.status()).values).toBe(1);
  });

  test("history keeps max history per key; keys lists live keys only", async () => {
    const { kvm: m } = await kvm();
    const kv = await m.create("h", { history: 2 });
    for (let i = 1; i <= 4; i++) await kv.put("k1", `v${i}`);
    await kv.put("k2", "x");
    await kv.put("k3", "y");
    await kv.delete("k3");
    const hist = await drain(await kv.history({ key: "k1" }));
    expect(hist.map((e) => e.string())).toEqual(["v3", "v4"]);
    const keys = await drain(await kv.keys());
    expect(keys.sort()).toEqual(["k1", "k2"]);
    const filtered = await drain(await kv.keys("k2"));
    expect(filtered).toEqual(["k2"]);
    const status = await kv.status();
    expect(status.history).toBe(2);
    expect(status.bucket).toBe("h");
  });

  test("watch delivers current values, then live updates and deletes", async () => {
    const { kvm: m } = await kvm();
    const kv = await m.create("w");
    await kv.put("x", "1");
    await kv.put("y", "2");
    await kv.put("x", "3");
    const seen: KvEntry[] = [];
    const w = await kv.watch();
    const done = (async () => {
      for await (const e of w) {
        seen.push(e);
        if (seen.length === 5) break;
      }
    })();
    await until(() => seen.length >= 2, 5_000, "initial values");
    expect(seen.slice(0, 2).map((e) => `${e.key}=${dec(e.value)}`).sort()).toEqual(["x=3", "y=2"]);
    await kv.put("z", "4");
    await kv.delete("y");
    await kv.put("x", "5");
    await done;
    expect(seen.slice(2).map((e) => `${e.key}:${e.operation}:${dec(e.value)}`)).toEqual(["z:PUT:4", "y:DEL:", "x:PUT:5"]);
  });

  test("ttl, max_value_size, destroy", async () => {
    const { kvm: m, jsm } = await kvm();
    const kv = await m.create("t", { ttl: 500, maxValueSize: 8 });
    expect((await jsm.streams.info("KV_t")).config.max_age).toBe(500_000_000);
    await expect(kv.put("big", "0123456789")).rejects.toThrow(/message size exceeds maximum allowed/);
    await kv.put("k", "v");
    await until(async () => (await kv.get("k")) === null, 5_000, "ttl expiry");
    expect(await kv.destroy()).toBe(true);
    await expect(jsm.streams.info("KV_t")).rejects.toThrow(/stream not found/);
  });

  test("a bucket survives a restart", async () => {
    const { server, kvm: m } = await kvm();
    const kv = await m.create("p", { history: 5 });
    await kv.put("a", "1");
    await kv.put("a", "2");
    await kv.put("b", "3");
    await server.restart();
    const c2 = await connectJs(server);
    const kv2 = await new Kvm(c2.nc).open("p");
    expect((await kv2.get("a"))!.string()).toBe("2");
    expect((await kv2.get("a"))!.revision).toBe(2);
    expect((await drain(await kv2.keys())).sort()).toEqual(["a", "b"]);
    expect(await kv2.update("a", "4", 2)).toBe(4);
    expect((await drain(await kv2.history({ key: "a" }))).map((e) => e.string())).toEqual(["1", "2", "4"]);
  });
});
