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
//    request-reply inbox churn does not grow the trie. A node's only literal child and its only
//    subscription are held inline; a Map (children) or NodeSubs (subscriptions) exists only while
//    there are two or more, and a wildcard holder only while a `*` or `>` child does.
// 4. generation changes whenever the set of subscriptions changes; a caller's result memo taken at
//    generation g is valid while generation === g.
// 5. Path compression is complete: a literal subscription with nothing else below its slot is held
//    in the slot itself (a leaf, no nodes for the rest of its path), and no node on a literal path
//    holds just one subscription and nothing else (remove() folds such a node back into a leaf).
//
// Costs: a cache hit is one Map.get, no allocation. A miss walks the trie (one level per token,
// plus one branch per `*` child met; a leaf ends it with one string compare) and caches the result
// if the subject missed recently before (admission, below): a subject published once is not cached.
// insert/remove walk one path; patching is one Map.get for a literal subject, a scan of the cache
// (<= cacheMax keys) for a wildcard one. Memory: a node is 48 B; 1M subscriptions `m.<i>.<j>.x` cost
// the trie a Map entry each under `m.<i>` and no node (was two nodes, ~100 B; ~700 with a Map and a
// Set per node).

import { numericKey } from "./numeric-key.ts";
import { isValidSubscribeSubject, subjectIsLiteral, subjectMatches } from "./subject.ts";

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

// Cache admission. nats-server caches every subject at its first match; so did we. Request-reply's
// reply subjects are unique (`_INBOX.<id>.<n>`, one per request), so they filled the cache with
// entries that are never hit, evicted the subjects that are, and every entry alive at a young
// collection was promoted and died old: under request-reply each young collection marked ~1 MiB and
// paused 1.1–1.4 ms, against ~0.5 ms with no cache (`BUN_JSC_logGC=1`). A subject is now cached at its
// second miss: a Bloom filter of the subjects that missed once (two bits each, no allocation) remembers
// the first, and is cleared after cacheMax of them so that a stream of unique subjects cannot fill it
// (~0.5% of such subjects pass as seen, 1.4% just before a clear). A filter has no false "not seen", so a
// publisher cycling over up to cacheMax subjects has them all cached from its second round, where one
// slot per hash let two subjects in one slot push each other out forever.
const ADMISSION_BITS_PER_ENTRY = 16; // 2 KiB per sublist (one per account) at the default 1024, at its first miss

/** 32-bit words of the admission filter: ADMISSION_BITS_PER_ENTRY per cached entry, rounded up to a power of two. */
function filterWords(cacheMax: number): number {
  let words = 1;
  while (words * 32 < cacheMax * ADMISSION_BITS_PER_ENTRY) words *= 2;
  return words;
}

/** FNV-1a over the subject's UTF-16 code units: the admission filter's two indexes come from it. */
function subjectHash(subject: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < subject.length; i++) h = Math.imul(h ^ subject.charCodeAt(i), 0x01000193);
  return h | 0;
}

const STAR = 0x2a;
const GT = 0x3e;

// A trie node holds its first literal child and its first subscription inline: no Map or Set exists
// until a second child or a second subscription arrives, and a node drops back to inline when it is
// down to one again. Most nodes of a large trie (a subject per inbox, per device, per order) have one
// child or one subscription, and a Map or Set costs ~250-300 B where a node costs 48 B (four fields:
// JSC rounds objects to 16 B, so the rarer wildcard children live in a holder of their own). A
// single-child step of a match is a string compare instead of a hash lookup. A Map's keys are
// numericKey(token): a token in plain digits (a device or order number) is a number there, so a
// leaf under it needs no string at all.
//
// Path compression: a child slot may hold a subscription itself instead of a node (a "leaf") when
// that subscription's subject is literal and nothing else lies below the slot. It stands for the
// chain of single-child nodes down to it (`m.1.2.x` among others under `m.1` costs no node for `2`
// nor for `x`): it matches a published subject iff the two subjects are equal, since the slot's path
// is literal and a published subject reaches it only through that path. A second subscription at or
// below a leaf turns it back into a node (one level at a time); a removal that leaves a node holding
// nothing but one leaf (or one literal subscription) folds it back into a leaf.
class TrieNode<S extends SublistEntry> {
  /** Literal children: null, the only one (a node, compared by its token, or a leaf), or a Map once there are two or more. */
  kids: Slot<S> | Map<number | string, Slot<S>> | null = null;
  /** The `*` and `>` children, null when there are neither. */
  wild: WildKids<S> | null = null;
  /** null, the only subscription (plain or queue), or a NodeSubs once there are two or more. */
  subs: S | NodeSubs<S> | null = null;

  /** `token` is this node's key in its parent. */
  constructor(readonly token: string) {}

  /**
   * The literal child for `token`, which starts at `start` in the subject being walked. A leaf's
   * token is read from its own subject at the same offset: the path to a leaf is literal, so the
   * walked subject and the leaf's share every character before `start`.
   */
  child(token: string, start: number): Slot<S> | undefined {
    const kids = this.kids;
    if (kids === null) return undefined;
    if (kids instanceof TrieNode) return kids.token === token ? kids : undefined;
    if (kids instanceof Map) return kids.get(numericKey(token));
    return leafTokenIs(kids, token, start) ? kids : undefined;
  }

  /** Puts `slot` under `token` (starting at `start`), in place of what is there. */
  setChild(token: string, start: number, slot: Slot<S>): void {
    const kids = this.kids;
    if (kids === null) this.kids = slot;
    else if (kids instanceof Map) kids.set(numericKey(token), slot);
    else {
      const kidToken = kids instanceof TrieNode ? kids.token : leafToken(kids, start);
      this.kids = kidToken === token ? slot : new Map([[numericKey(kidToken), kids], [numericKey(token), slot]]);
    }
  }

  /** Unlinks a child (literal node or leaf under `token`, or a wildcard node); a Map down to one child goes back inline. */
  removeChild(child: Slot<S>, token: string): void {
    const wild = this.wild;
    if (wild !== null && (wild.pwc === child || wild.fwc === child)) {
      if (wild.pwc === child) wild.pwc = null;
      else wild.fwc = null;
      if (wild.pwc === null && wild.fwc === null) this.wild = null;
      return;
    }
    const kids = this.kids!;
    if (kids === child) {
      this.kids = null;
      return;
    }
    const many = kids as Map<number | string, Slot<S>>;
    many.delete(numericKey(token));
    if (many.size === 1) for (const last of many.values()) this.kids = last;
  }

  /** Puts `slot` where the literal child node `child` is. */
  replaceChild(child: TrieNode<S>, slot: Slot<S>): void {
    const kids = this.kids;
    if (kids === child) this.kids = slot;
    else (kids as Map<number | string, Slot<S>>).set(numericKey(child.token), slot);
  }

  isEmpty(): boolean {
    return this.subs === null && this.kids === null && this.wild === null;
  }

  /** The one subscription this node and everything below it hold, if that is all there is; else null. */
  loneSub(): S | null {
    if (this.wild !== null) return null;
    const kids = this.kids, subs = this.subs;
    if (kids === null) return subs instanceof NodeSubs ? null : subs;
    if (subs !== null || kids instanceof TrieNode || kids instanceof Map) return null;
    return kids;
  }
}

/** A literal child: a node, or a leaf (a subscription standing for the chain of nodes down to it). */
type Slot<S extends SublistEntry> = TrieNode<S> | S;

const DOT = 0x2e;

// Is `leaf`'s token at `start` (up to the next dot) equal to `token`?
function leafTokenIs(leaf: SublistEntry, token: string, start: number): boolean {
  const subject = leaf.subject;
  const end = start + token.length;
  return (end === subject.length || (end < subject.length && subject.charCodeAt(end) === DOT)) && subject.startsWith(token, start);
}

function leafToken(leaf: SublistEntry, start: number): string {
  const subject = leaf.subject;
  const end = subject.indexOf(".", start);
  return subject.slice(start, end < 0 ? subject.length : end);
}

class WildKids<S extends SublistEntry> {
  pwc: TrieNode<S> | null = null; // child for a `*` token
  fwc: TrieNode<S> | null = null; // child for a `>` token (always a leaf)
}

/** Two or more subscriptions of one node. */
class NodeSubs<S extends SublistEntry> {
  size = 0;
  plain: Set<S> | null = null; // null when empty
  queues: Map<string, Set<S>> | null = null; // null when empty; no empty sets inside

  /** False if `sub` is already here. */
  add(sub: S): boolean {
    const queue = sub.queue;
    if (queue === null) {
      let set = this.plain;
      if (set === null) set = this.plain = new Set();
      else if (set.has(sub)) return false;
      set.add(sub);
    } else {
      let groups = this.queues;
      if (groups === null) groups = this.queues = new Map();
      let set = groups.get(queue);
      if (set === undefined) {
        set = new Set();
        groups.set(queue, set);
      } else if (set.has(sub)) return false;
      set.add(sub);
    }
    this.size++;
    return true;
  }

  /** False if `sub` is not here. */
  delete(sub: S): boolean {
    const queue = sub.queue;
    if (queue === null) {
      const set = this.plain;
      if (set === null || !set.delete(sub)) return false;
      if (set.size === 0) this.plain = null;
    } else {
      const groups = this.queues;
      const set = groups === null ? undefined : groups.get(queue);
      if (set === undefined || !set.delete(sub)) return false;
      if (set.size === 0) {
        groups!.delete(queue);
        if (groups!.size === 0) this.queues = null;
      }
    }
    this.size--;
    return true;
  }

  /** The one member left (size === 1). */
  only(): S {
    if (this.plain !== null) for (const s of this.plain) return s;
    for (const members of this.queues!.values()) for (const s of members) return s;
    throw new Error("sublist: NodeSubs.only() on an empty set");
  }
}

export class Sublist<S extends SublistEntry> {
  private readonly root = new TrieNode<S>("");
  private readonly cache = new Map<string, SublistResult<S>>();
  private readonly cacheMax: number;
  private readonly cacheKeep: number; // size an eviction sweep brings the cache down to
  private subCount = 0;
  private gen = 0;
  private inserts = 0;
  private removes = 0;
  private matches = 0;
  private cacheHits = 0;
  /** Admission: a Bloom filter of the subjects that missed once and were not cached; allocated at the first miss. */
  private seen: Int32Array | null = null;
  private seenCount = 0;
  // Scratch for match misses and removes, reused so they do not allocate arrays.
  private readonly tokens: string[] = [];
  private readonly pathNodes: TrieNode<S>[] = [];

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
    const literal = subjectIsLiteral(subject); // only a literal subject may become a leaf
    const n = subject.length;
    let node = this.root;
    let wild = false;
    let start = 0;
    for (;;) {
      let end = subject.indexOf(".", start);
      if (end < 0) end = n;
      let next: Slot<S> | null | undefined;
      const c = end - start === 1 ? subject.charCodeAt(start) : 0;
      if (c === STAR || c === GT) {
        wild = true;
        const w = (node.wild ??= new WildKids<S>());
        next = c === STAR ? w.pwc : w.fwc;
        if (next === null) {
          next = new TrieNode<S>(c === STAR ? "*" : ">");
          if (c === STAR) w.pwc = next;
          else w.fwc = next;
        }
      } else {
        const token = subject.slice(start, end);
        next = node.child(token, start);
        if (next === undefined) {
          if (literal) {
            node.setChild(token, start, sub); // nothing below: the subscription is the leaf
            this.added(subject, false, sub);
            return;
          }
          next = new TrieNode<S>(token);
          node.setChild(token, start, next);
        } else if (!(next instanceof TrieNode)) {
          if (next === sub) return;
          next = this.expandLeaf(node, token, start, end, next);
        }
      }
      node = next as TrieNode<S>;
      if (end === n) break;
      start = end + 1;
    }

    const subs = node.subs;
    if (subs === null) node.subs = sub;
    else if (subs === sub) return;
    else if (subs instanceof NodeSubs) {
      if (!subs.add(sub)) return;
    } else {
      const both = new NodeSubs<S>();
      both.add(subs);
      both.add(sub);
      node.subs = both;
    }
    this.added(subject, wild, sub);
  }

  // Counts an inserted subscription and patches the cached results its subject matches.
  private added(subject: string, wild: boolean, sub: S): void {
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

  // Turns the leaf under `token` (at start..end) of `parent` back into a node, one level: the leaf's
  // subscription ends there or goes on as a leaf one token further down.
  private expandLeaf(parent: TrieNode<S>, token: string, start: number, end: number, leaf: S): TrieNode<S> {
    const node = new TrieNode<S>(token);
    if (leaf.subject.length === end) node.subs = leaf;
    else node.kids = leaf;
    parent.setChild(token, start, node);
    return node;
  }

  /** Remove a subscription (by identity). False if it was not in the list. */
  remove(sub: S): boolean {
    const subject = sub.subject;
    const n = subject.length;
    if (n === 0) return false;
    const pathNodes = this.pathNodes;
    let depth = 0;
    let node = this.root;
    let wild = false;
    let firstWild = -1; // depth of the first wildcard token; the nodes above it have literal paths
    let leafRemoved = false;
    let start = 0;
    for (;;) {
      let end = subject.indexOf(".", start);
      if (end < 0) end = n;
      let next: Slot<S> | null | undefined;
      const c = end - start === 1 ? subject.charCodeAt(start) : 0;
      if (c === STAR || c === GT) {
        if (!wild) firstWild = depth;
        wild = true;
        const w = node.wild;
        next = w === null ? null : c === STAR ? w.pwc : w.fwc;
      } else {
        const token = subject.slice(start, end);
        next = node.child(token, start);
        if (next !== undefined && !(next instanceof TrieNode)) {
          // A leaf: nothing else lies below it, so it is this subscription or this one is not here.
          if (next !== sub) return this.clearPath(depth, false);
          node.removeChild(next, token);
          leafRemoved = true;
          break;
        }
      }
      if (next == null) return this.clearPath(depth, false);
      pathNodes[depth] = next;
      depth++;
      node = next;
      if (end === n) break;
      start = end + 1;
    }

    if (!leafRemoved) {
      const subs = node.subs;
      if (subs === sub) node.subs = null;
      else if (subs instanceof NodeSubs && subs.delete(sub)) {
        if (subs.size === 1) node.subs = subs.only(); // back to inline
      } else return this.clearPath(depth, false);
    }

    // Bottom-up: a node left empty goes; a node on a literal path left holding one subscription (its
    // own or a leaf below it) folds into that leaf. An ancestor of a node that stays is unchanged.
    for (let i = depth - 1; i >= 0; i--) {
      const child = pathNodes[i]!;
      const parent = i === 0 ? this.root : pathNodes[i - 1]!;
      if (child.isEmpty()) {
        parent.removeChild(child, child.token);
        continue;
      }
      const lone = firstWild < 0 || i < firstWild ? child.loneSub() : null;
      if (lone === null) break;
      parent.replaceChild(child, lone);
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
    for (let i = 0; i < depth; i++) this.pathNodes[i] = this.root;
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
    collect(this.root, subject, tokens, 0, nt, plain, queues);
    const result: SublistResult<S> =
      plain.length === 0 && queues.length === 0 ? EMPTY_RESULT : { plain, queues };
    if (this.cacheMax > 0 && this.admit(subject)) {
      const cache = this.cache;
      cache.set(subject, result);
      if (cache.size > this.cacheMax) this.evict();
    }
    return result;
  }

  // True if the subject missed before (since the filter's last clear); else remembers it and says no.
  private admit(subject: string): boolean {
    const bits = (this.seen ??= new Int32Array(filterWords(this.cacheMax)));
    const mask = bits.length * 32 - 1; // a power of two
    const hash = subjectHash(subject);
    const a = hash & mask;
    const b = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b) & mask; // a second index from the same hash, remixed
    const wordA = a >>> 5;
    const bitA = 1 << (a & 31);
    const wordB = b >>> 5;
    const bitB = 1 << (b & 31);
    if ((bits[wordA]! & bitA) !== 0 && (bits[wordB]! & bitB) !== 0) return true;
    bits[wordA] = bits[wordA]! | bitA;
    bits[wordB] = bits[wordB]! | bitB;
    if (++this.seenCount >= this.cacheMax) {
      bits.fill(0);
      this.seenCount = 0;
    }
    return false;
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

// Walk the trie for `subject` = tokens[i..nt) from `node`. `>` children take the rest; `*` children
// branch; a leaf ends the walk (it matches iff its subject is the published one).
function collect<S extends SublistEntry>(
  node: TrieNode<S>,
  subject: string,
  tokens: readonly string[],
  i: number,
  nt: number,
  plain: S[],
  queues: S[][],
): void {
  for (; i < nt; i++) {
    const wild = node.wild;
    if (wild !== null) {
      if (wild.fwc !== null) addNode(wild.fwc, plain, queues);
      if (wild.pwc !== null) collect(wild.pwc, subject, tokens, i + 1, nt, plain, queues);
    }
    const kids = node.kids;
    if (kids === null) return;
    let next: Slot<S> | undefined;
    if (kids instanceof TrieNode) {
      if (kids.token !== tokens[i]) return;
      next = kids;
    } else if (kids instanceof Map) {
      next = kids.get(numericKey(tokens[i]!));
      if (next === undefined) return;
    } else next = kids;
    if (!(next instanceof TrieNode)) {
      if (next.subject === subject) addSub(next, plain, queues);
      return;
    }
    node = next;
  }
  addNode(node, plain, queues);
}

function addNode<S extends SublistEntry>(node: TrieNode<S>, plain: S[], queues: S[][]): void {
  const subs = node.subs;
  if (subs === null) return;
  if (!(subs instanceof NodeSubs)) {
    addSub(subs, plain, queues);
    return;
  }
  if (subs.plain !== null) for (const s of subs.plain) plain.push(s);
  if (subs.queues === null) return;
  for (const [name, members] of subs.queues) {
    const group = groupOf(queues, name);
    for (const s of members) group.push(s);
  }
}

function addSub<S extends SublistEntry>(sub: S, plain: S[], queues: S[][]): void {
  if (sub.queue === null) plain.push(sub);
  else groupOf(queues, sub.queue).push(sub);
}

// The result's array for queue group `name`, added if it is not there yet.
function groupOf<S extends SublistEntry>(queues: S[][], name: string): S[] {
  for (let g = 0; g < queues.length; g++) if (queues[g]![0]!.queue === name) return queues[g]!;
  const group: S[] = [];
  queues.push(group);
  return group;
}

function collectAll<S extends SublistEntry>(node: TrieNode<S>, out: S[]): void {
  const subs = node.subs;
  if (subs instanceof NodeSubs) {
    if (subs.plain !== null) for (const s of subs.plain) out.push(s);
    if (subs.queues !== null) for (const members of subs.queues.values()) for (const s of members) out.push(s);
  } else if (subs !== null) out.push(subs);
  const kids = node.kids;
  if (kids instanceof Map) for (const child of kids.values()) collectSlot(child, out);
  else if (kids !== null) collectSlot(kids, out);
  const wild = node.wild;
  if (wild !== null) {
    if (wild.pwc !== null) collectAll(wild.pwc, out);
    if (wild.fwc !== null) collectAll(wild.fwc, out);
  }
}

function collectSlot<S extends SublistEntry>(slot: Slot<S>, out: S[]): void {
  if (slot instanceof TrieNode) collectAll(slot, out);
  else out.push(slot);
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
