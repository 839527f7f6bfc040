// Sublist: which subscriptions does a published subject reach? A token trie plus a result cache,
// after nats-server's server/sublist.go.
//
// Invariants
// 1. Results are immutable. A SublistResult, its arrays and its queue-group arrays never change
//    after match() returns them, so a caller may keep iterating one while subscriptions come and go.
//    Patching builds a new result (copy-on-write; untouched arrays are shared, never mutated).
//    The no-match result is one shared frozen object, EMPTY_RESULT.
// 2. The cache is coherent with the trie: every cached result equals what a fresh trie walk for
//    its key would return now (as sets; member order may differ). insert/remove patch the entries
//    their subject matches instead of wiping the cache (a literal subject touches only its own key).
// 3. Trie nodes with no subscriptions and no children do not exist: remove() prunes them, so
//    request-reply inbox churn does not grow the trie.
// 4. generation changes whenever the set of subscriptions changes; a caller's result memo taken at
//    generation g is valid while generation === g.
//
// Costs: a cache hit is one Map.get, no allocation. A miss walks the trie (one level per token,
// plus one branch per `*` child met) and caches the result. insert/remove walk one path; patching
// is one Map.get for a literal subject, a scan of the cache (<= cacheMax keys) for a wildcard one.

import { isValidSubscribeSubject, subjectMatches } from "./subject.ts";

export interface SublistEntry {
  readonly subject: string;
  /** Queue group name, or null for a plain subscription. */
  readonly queue: string | null;
}

export interface SublistResult<S> {
  /** Plain subscriptions: each gets the message. */
  readonly plain: readonly S[];
  /** One non-empty array per queue group name (members of that group): one member of each gets it. */
  readonly queues: readonly (readonly S[])[];
}

/** nats-server's SublistStats, in its JSON field names (what /subsz reports). */
export interface SublistStats {
  num_subscriptions: number;
  num_cache: number;
  num_inserts: number;
  num_removes: number;
  num_matches: number;
  /** Cache hits / matches, 0 before any match. */
  cache_hit_rate: number;
  /** Over cached results: max of (plain subs + queue groups) of one result. */
  max_fanout: number;
  /** Over cached results: mean of (plain subs + queue groups), 0 if none fan out. */
  avg_fanout: number;
}

export interface SublistOptions {
  /** Most results cached; 0 disables the cache. Default 1024 (nats-server's slCacheMax). */
  readonly cacheMax?: number;
}

export const EMPTY_RESULT: SublistResult<never> = Object.freeze({
  plain: Object.freeze([]) as readonly never[],
  queues: Object.freeze([]) as readonly (readonly never[])[],
});

export const DEFAULT_CACHE_MAX = 1024;

const STAR = 0x2a;
const GT = 0x3e;

class TrieNode<S> {
  literal: Map<string, TrieNode<S>> | null = null;
  pwc: TrieNode<S> | null = null; // child for a `*` token
  fwc: TrieNode<S> | null = null; // child for a `>` token (always a leaf)
  plain: Set<S> | null = null; // null when empty
  queues: Map<string, Set<S>> | null = null; // null when empty; no empty sets inside

  isEmpty(): boolean {
    return (
      this.plain === null &&
      this.queues === null &&
      this.pwc === null &&
      this.fwc === null &&
      (this.literal === null || this.literal.size === 0)
    );
  }
}

export class Sublist<S extends SublistEntry> {
  private readonly root = new TrieNode<S>();
  private readonly cache = new Map<string, SublistResult<S>>();
  private readonly cacheMax: number;
  private readonly cacheKeep: number; // size an eviction sweep brings the cache down to
  private subCount = 0;
  private gen = 0;
  private inserts = 0;
  private removes = 0;
  private matches = 0;
  private cacheHits = 0;
  // Scratch for match misses and removes, reused so they do not allocate arrays.
  private readonly tokens: string[] = [];
  private readonly pathNodes: TrieNode<S>[] = [];
  private readonly pathTokens: string[] = [];

  constructor(options: SublistOptions = {}) {
    const max = options.cacheMax ?? DEFAULT_CACHE_MAX;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`cacheMax must be an integer >= 0, got ${max}`);
    this.cacheMax = max;
    this.cacheKeep = Math.floor((max * 3) / 4);
  }

  /** Number of subscriptions held. */
  get count(): number {
    return this.subCount;
  }

  /** Changes on every insert and every remove that found its subscription. */
  get generation(): number {
    return this.gen;
  }

  /**
   * Add a subscription. Its subject must be valid (isValidSubscribeSubject); an invalid one throws,
   * since it would break the trie/cache agreement. Inserting the same object twice is a no-op.
   */
  insert(sub: S): void {
    const subject = sub.subject;
    if (!isValidSubscribeSubject(subject)) throw new Error(`sublist: invalid subject ${JSON.stringify(subject)}`);
    const n = subject.length;
    let node = this.root;
    let wild = false;
    let start = 0;
    for (;;) {
      let end = subject.indexOf(".", start);
      if (end < 0) end = n;
      let next: TrieNode<S> | null | undefined;
      const c = end - start === 1 ? subject.charCodeAt(start) : 0;
      if (c === STAR) {
        wild = true;
        next = node.pwc;
        if (next === null) next = node.pwc = new TrieNode<S>();
      } else if (c === GT) {
        wild = true;
        next = node.fwc;
        if (next === null) next = node.fwc = new TrieNode<S>();
      } else {
        const token = subject.slice(start, end);
        let lits = node.literal;
        if (lits === null) lits = node.literal = new Map();
        next = lits.get(token);
        if (next === undefined) {
          next = new TrieNode<S>();
          lits.set(token, next);
        }
      }
      node = next;
      if (end === n) break;
      start = end + 1;
    }

    const queue = sub.queue;
    if (queue === null) {
      let set = node.plain;
      if (set === null) set = node.plain = new Set();
      else if (set.has(sub)) return;
      set.add(sub);
    } else {
      let groups = node.queues;
      if (groups === null) groups = node.queues = new Map();
      let set = groups.get(queue);
      if (set === undefined) {
        set = new Set();
        groups.set(queue, set);
      } else if (set.has(sub)) return;
      set.add(sub);
    }
    this.subCount++;
    this.inserts++;
    this.gen++;

    const cache = this.cache;
    if (cache.size === 0) return;
    if (!wild) {
      const r = cache.get(subject);
      if (r !== undefined) cache.set(subject, withSub(r, sub));
    } else {
      // Setting an existing key while iterating is safe and keeps the key's position. Iterating
      // keys() is cheaper than entries(): most keys do not match.
      for (const key of cache.keys()) if (subjectMatches(subject, key)) cache.set(key, withSub(cache.get(key)!, sub));
    }
  }

  /** Remove a subscription (by identity). False if it was not in the list. */
  remove(sub: S): boolean {
    const subject = sub.subject;
    const n = subject.length;
    if (n === 0) return false;
    const pathNodes = this.pathNodes;
    const pathTokens = this.pathTokens;
    let depth = 0;
    let node = this.root;
    let wild = false;
    let start = 0;
    for (;;) {
      let end = subject.indexOf(".", start);
      if (end < 0) end = n;
      let next: TrieNode<S> | null | undefined;
      const c = end - start === 1 ? subject.charCodeAt(start) : 0;
      let token = "";
      if (c === STAR) {
        wild = true;
        next = node.pwc;
      } else if (c === GT) {
        wild = true;
        next = node.fwc;
      } else {
        token = subject.slice(start, end);
        next = node.literal === null ? undefined : node.literal.get(token);
      }
      if (next == null) return this.clearPath(depth, false);
      pathNodes[depth] = next;
      pathTokens[depth] = token;
      depth++;
      node = next;
      if (end === n) break;
      start = end + 1;
    }

    const queue = sub.queue;
    if (queue === null) {
      const set = node.plain;
      if (set === null || !set.delete(sub)) return this.clearPath(depth, false);
      if (set.size === 0) node.plain = null;
    } else {
      const groups = node.queues;
      const set = groups === null ? undefined : groups.get(queue);
      if (set === undefined || !set.delete(sub)) return this.clearPath(depth, false);
      if (set.size === 0) {
        groups!.delete(queue);
        if (groups!.size === 0) node.queues = null;
      }
    }

    // Prune empty nodes bottom-up; an ancestor of a non-empty node is non-empty.
    for (let i = depth - 1; i >= 0; i--) {
      const child = pathNodes[i]!;
      if (!child.isEmpty()) break;
      const parent = i === 0 ? this.root : pathNodes[i - 1]!;
      if (parent.pwc === child) parent.pwc = null;
      else if (parent.fwc === child) parent.fwc = null;
      else parent.literal!.delete(pathTokens[i]!);
    }
    this.clearPath(depth, true);

    this.subCount--;
    this.removes++;
    this.gen++;

    const cache = this.cache;
    if (cache.size === 0) return true;
    if (!wild) {
      const r = cache.get(subject);
      if (r !== undefined) cache.set(subject, withoutSub(r, sub));
    } else {
      for (const key of cache.keys()) if (subjectMatches(subject, key)) cache.set(key, withoutSub(cache.get(key)!, sub));
    }
    return true;
  }

  // Drop scratch references so pruned nodes can be collected.
  private clearPath(depth: number, value: boolean): boolean {
    for (let i = 0; i < depth; i++) {
      this.pathNodes[i] = this.root;
      this.pathTokens[i] = "";
    }
    return value;
  }

  /**
   * Subscriptions matching a published subject. The result is shared and immutable (see the header).
   * A subject with an empty token matches nothing. `*`/`>` tokens in it are matched as nats-server
   * does: only by wildcard subscriptions.
   */
  match(subject: string): SublistResult<S> {
    this.matches++;
    // Hot path: one Map.get, no allocation.
    const hit = this.cache.get(subject);
    if (hit !== undefined) {
      this.cacheHits++;
      return hit;
    }
    return this.matchMiss(subject);
  }

  private matchMiss(subject: string): SublistResult<S> {
    const n = subject.length;
    if (n === 0) return EMPTY_RESULT;
    const tokens = this.tokens;
    let nt = 0;
    let start = 0;
    for (;;) {
      let end = subject.indexOf(".", start);
      if (end < 0) end = n;
      if (end === start) return EMPTY_RESULT; // empty token: not cached, as in nats-server
      tokens[nt++] = subject.slice(start, end);
      if (end === n) break;
      start = end + 1;
    }
    const plain: S[] = [];
    const queues: S[][] = [];
    collect(this.root, tokens, 0, nt, plain, queues);
    const result: SublistResult<S> =
      plain.length === 0 && queues.length === 0 ? EMPTY_RESULT : { plain, queues };
    if (this.cacheMax > 0) {
      const cache = this.cache;
      cache.set(subject, result);
      if (cache.size > this.cacheMax) this.evict();
    }
    return result;
  }

  // Drop the oldest-inserted entries down to 3/4 of the bound. A Map iterates in insertion order, so
  // this is the cheap choice in JS (nats-server drops "random" entries via Go's map order, down to
  // 1/4, which empties the cache of hot entries too). One sweep per cacheMax/4 misses amortizes the
  // iterator; keeping 3/4 keeps most of a warm working set.
  private evict(): void {
    const cache = this.cache;
    let excess = cache.size - this.cacheKeep;
    for (const key of cache.keys()) {
      cache.delete(key);
      if (--excess <= 0) break;
    }
  }

  /** nats-server's Sublist.Stats(), fanout computed over the cached results as it does. */
  stats(): SublistStats {
    let total = 0;
    let max = 0;
    for (const r of this.cache.values()) {
      const f = r.plain.length + r.queues.length;
      total += f;
      if (f > max) max = f;
    }
    const cached = this.cache.size;
    return {
      num_subscriptions: this.subCount,
      num_cache: cached,
      num_inserts: this.inserts,
      num_removes: this.removes,
      num_matches: this.matches,
      cache_hit_rate: this.matches > 0 ? this.cacheHits / this.matches : 0,
      max_fanout: max,
      avg_fanout: total > 0 ? total / cached : 0,
    };
  }

  /** Every subscription, in no particular order (for monitoring). */
  all(): S[] {
    const out: S[] = [];
    collectAll(this.root, out);
    return out;
  }
}

// Walk the trie for tokens[i..nt) from `node`. `>` children take the rest; `*` children branch.
function collect<S extends SublistEntry>(
  node: TrieNode<S>,
  tokens: readonly string[],
  i: number,
  nt: number,
  plain: S[],
  queues: S[][],
): void {
  for (; i < nt; i++) {
    if (node.fwc !== null) addNode(node.fwc, plain, queues);
    if (node.pwc !== null) collect(node.pwc, tokens, i + 1, nt, plain, queues);
    const next = node.literal === null ? undefined : node.literal.get(tokens[i]!);
    if (next === undefined) return;
    node = next;
  }
  addNode(node, plain, queues);
}

function addNode<S extends SublistEntry>(node: TrieNode<S>, plain: S[], queues: S[][]): void {
  if (node.plain !== null) for (const s of node.plain) plain.push(s);
  if (node.queues === null) return;
  for (const [name, members] of node.queues) {
    let group: S[] | undefined;
    for (let g = 0; g < queues.length; g++) {
      if (queues[g]![0]!.queue === name) {
        group = queues[g];
        break;
      }
    }
    if (group === undefined) queues.push((group = []));
    for (const s of members) group.push(s);
  }
}

function collectAll<S>(node: TrieNode<S>, out: S[]): void {
  if (node.plain !== null) for (const s of node.plain) out.push(s);
  if (node.queues !== null) for (const members of node.queues.values()) for (const s of members) out.push(s);
  if (node.literal !== null) for (const child of node.literal.values()) collectAll(child, out);
  if (node.pwc !== null) collectAll(node.pwc, out);
  if (node.fwc !== null) collectAll(node.fwc, out);
}

function appended<T>(list: readonly T[], item: T): T[] {
  const out = list.slice();
  out.push(item);
  return out;
}

function removedAt<T>(list: readonly T[], at: number): T[] {
  const out = list.slice(0, at);
  for (let i = at + 1; i < list.length; i++) out.push(list[i]!);
  return out;
}

// Copy-on-write: a new result with `sub` added; arrays not touched are shared.
function withSub<S extends SublistEntry>(r: SublistResult<S>, sub: S): SublistResult<S> {
  const queue = sub.queue;
  if (queue === null) return { plain: appended(r.plain, sub), queues: r.queues };
  const queues = r.queues;
  for (let g = 0; g < queues.length; g++) {
    if (queues[g]![0]!.queue === queue) {
      const nq = queues.slice();
      nq[g] = appended(queues[g]!, sub);
      return { plain: r.plain, queues: nq };
    }
  }
  return { plain: r.plain, queues: appended(queues, [sub]) };
}

// Copy-on-write: a new result without `sub` (EMPTY_RESULT if nothing is left).
function withoutSub<S extends SublistEntry>(r: SublistResult<S>, sub: S): SublistResult<S> {
  let plain = r.plain;
  let queues = r.queues;
  const queue = sub.queue;
  if (queue === null) {
    const at = plain.indexOf(sub);
    if (at < 0) return r;
    plain = removedAt(plain, at);
  } else {
    let g = 0;
    while (g < queues.length && queues[g]![0]!.queue !== queue) g++;
    if (g === queues.length) return r;
    const group = queues[g]!;
    const at = group.indexOf(sub);
    if (at < 0) return r;
    if (group.length === 1) {
      queues = removedAt(queues, g);
    } else {
      const nq = queues.slice();
      nq[g] = removedAt(group, at);
      queues = nq;
    }
  }
  return plain.length === 0 && queues.length === 0 ? EMPTY_RESULT : { plain, queues };
}
