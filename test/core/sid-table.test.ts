// SidTable (a connection's subscriptions by sid key) against a Map as the model: dense sids,
// sids far apart, text sids, unsubscribing most of them (the array spills into the Map) and back.
import { describe, expect, test } from "vitest";
import { SidTable } from "../../src/sid-table.ts";
import type { Subscription } from "../../src/subscription.ts";

const fakeSub = (key: number | string) => ({ key }) as unknown as Subscription;

function same(table: SidTable, model: Map<number | string, Subscription>, ctx: string): void {
  expect(table.size, ctx).toBe(model.size);
  for (const [key, sub] of model) if (table.get(key) !== sub) expect(table.get(key), `${ctx}: get ${key}`).toBe(sub);
  const listed = [...table.values()];
  expect(listed.length, ctx).toBe(model.size);
  expect(new Set(listed), ctx).toEqual(new Set(model.values()));
}

describe("SidTable", () => {
  test("sequential sids, in sid order; gaps, far numbers and texts; get of an absent key", () => {
    const t = new SidTable();
    const model = new Map<number | string, Subscription>();
    for (const key of [1, 2, 3, 5, 0, 4000, "01", "a", 10 ** 14]) {
      const sub = fakeSub(key);
      t.set(key, sub);
      model.set(key, sub);
    }
    same(t, model, "filled");
    expect([...t.values()].slice(0, 5).map((s) => (s as unknown as { key: number }).key)).toEqual([0, 1, 2, 3, 5]);
    for (const absent of [4, 6, 1000, "1", "b", 10 ** 14 + 1]) expect(t.get(absent)).toBeUndefined();
    expect(t.delete(4)).toBe(false);
    expect(t.delete("01")).toBe(true);
    model.delete("01");
    same(t, model, "after deletes");
    t.clear();
    expect(t.size).toBe(0);
    expect([...t.values()]).toEqual([]);
  });

  test("random operations agree with a Map (the array spills and is rebuilt)", () => {
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const t = new SidTable();
    const model = new Map<number | string, Subscription>();
    let next = 1;
    for (let step = 0; step < 20_000; step++) {
      const op = rand(10);
      if (op < 5) {
        // Mostly the next sid, sometimes a far or a text one.
        const kind = rand(20);
        const key = kind === 0 ? 5000 + rand(100_000) : kind === 1 ? `s${rand(50)}` : next++;
        if (model.has(key)) continue;
        const sub = fakeSub(key);
        t.set(key, sub);
        model.set(key, sub);
      } else {
        const keys = [...model.keys()];
        if (keys.length === 0) continue;
        const key = keys[rand(keys.length)]!;
        expect(t.delete(key)).toBe(true);
        model.delete(key);
        expect(t.delete(key)).toBe(false);
      }
      if (step % 500 === 0) same(t, model, `step ${step}`);
    }
    same(t, model, "random phase");
    // Unsubscribe nine in ten: the array is given up (its entries move to the Map), nothing is lost.
    const keys = [...model.keys()];
    for (let k = 0; k < keys.length; k++) {
      if (k % 10 === 0) continue;
      expect(t.delete(keys[k]!)).toBe(true);
      model.delete(keys[k]!);
    }
    same(t, model, "drained");
    expect((t as unknown as { dense: unknown[] }).dense.length, "the array spilled into the Map").toBeLessThan(next / 4);
    for (let k = 0; k < 500; k++) {
      const key = next++;
      const sub = fakeSub(key);
      t.set(key, sub);
      model.set(key, sub);
    }
    same(t, model, "end");
  });
});
