import type { Subscription } from "./subscription.ts";

// How far past the end of the dense array a new numeric sid may land and still extend it.
const DENSE_REACH = 1024;
// Below this many slots the dense array is never given up.
const DENSE_MIN_SLOTS = 64;

/**
 * One connection's subscriptions by sid key (Subscription.sidKey). Client libraries number their sids
 * 1, 2, 3, …, so those live in an array indexed by the number: a slot is 8 B where a Map entry costs
 * about 50 B, which at a million subscriptions is a sixth of what one costs. Any other sid (text, a
 * number far past the array's end) goes to a Map. The array is given up (its entries move to the
 * Map) once fewer than a quarter of its slots are in use, so unsubscribing does not leave it large.
 * Iteration: the array's in sid order, then the Map's in insertion order.
 */
export class SidTable {
  private dense: (Subscription | undefined)[] = [];
  private denseCount = 0;
  private other: Map<number | string, Subscription> | null = null;

  get size(): number {
    return this.denseCount + (this.other === null ? 0 : this.other.size);
  }

  get(key: number | string): Subscription | undefined {
    if (typeof key === "number" && key < this.dense.length) {
      const sub = this.dense[key];
      if (sub !== undefined) return sub;
    }
    return this.other === null ? undefined : this.other.get(key); // after a spill, small keys live here too
  }

  has(key: number | string): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds `sub` under `key`, which must not be in use. */
  set(key: number | string, sub: Subscription): void {
    const dense = this.dense;
    if (typeof key === "number" && key < dense.length + DENSE_REACH) {
      while (dense.length < key) dense.push(undefined);
      if (key === dense.length) dense.push(sub);
      else dense[key] = sub;
      this.denseCount++;
      return;
    }
    (this.other ??= new Map()).set(key, sub);
  }

  delete(key: number | string): boolean {
    const dense = this.dense;
    if (typeof key === "number" && key < dense.length && dense[key] !== undefined) {
      dense[key] = undefined;
      this.denseCount--;
      while (dense.length > 0 && dense[dense.length - 1] === undefined) dense.pop();
      if (dense.length > DENSE_MIN_SLOTS && this.denseCount * 4 < dense.length) this.spill();
      return true;
    }
    return this.other !== null && this.other.delete(key);
  }

  clear(): void {
    this.dense = [];
    this.denseCount = 0;
    this.other = null;
  }

  *values(): IterableIterator<Subscription> {
    for (const sub of this.dense) if (sub !== undefined) yield sub;
    if (this.other !== null) yield* this.other.values();
  }

  // Moves the array's entries to the Map.
  private spill(): void {
    const other = (this.other ??= new Map());
    const dense = this.dense;
    for (let key = 0; key < dense.length; key++) {
      const sub = dense[key];
      if (sub !== undefined) other.set(key, sub);
    }
    this.dense = [];
    this.denseCount = 0;
  }
}
