import { describe, expect, test } from "vitest";
import { numericKey } from "../../src/subjects/numeric-key.ts";
import { subjectIsLiteral, subjectMatches } from "../../src/subjects/subject.ts";
import {
  DEFAULT_CACHE_MAX,
  EMPTY_RESULT,
  Sublist,
  type SublistEntry,
  type SublistResult,
} from "../../src/subjects/sublist.ts";

interface TSub extends SublistEntry {
  readonly id: number;
}

let nextId = 1;
function sub(subject: string, queue: string | null = null): TSub {
  return { id: nextId++, subject, queue };
}

const ids = (subs: readonly TSub[]): number[] => subs.map((s) => s.id).sort((a, b) => a - b);

/** A result as plain data: sorted plain ids, and queue name -> sorted member ids. */
function view(r: SublistResult<TSub>): { plain: number[]; queues: Record<string, number[]> } {
  const queues: Record<string, number[]> = {};
  for (const group of r.queues) {
    // Plain checks, not expect(): this runs for every match of the property test.
    if (group.length === 0) throw new Error("empty queue group in a result");
    const name = group[0]!.queue!;
    if (name === null) throw new Error("a plain subscription in a queue group");
    for (const s of group) if (s.queue !== name) throw new Error(`group ${name} holds a member of ${s.queue}`);
    if (queues[name] !== undefined) throw new Error(`queue ${name} appears as two groups`);
    queues[name] = ids(group);
  }
  return { plain: ids(r.plain), queues };
}

// Cache hits so far, from the public stats.
function hits(sl: Sublist<TSub>): number {
  const st = sl.stats();
  return Math.round(st.cache_hit_rate * st.num_matches);
}

// A subject is cached at its second miss (admission, src/subjects/sublist.ts): match it twice.
function primed(sl: Sublist<TSub>, subject: string): SublistResult<TSub> {
  sl.match(subject);
  return sl.match(subject);
}

function trieIsEmpty(sl: Sublist<TSub>): boolean {
  return (sl as unknown as { root: { isEmpty(): boolean } }).root.isEmpty();
}

// The trie's internals, as far as the shape checks below need them. A child slot holds a node or a
// leaf (a subscription standing for the chain of nodes down to it).
interface RawNode {
  token: string;
  kids: RawNode | TSub | Map<number | string, RawNode | TSub> | null;
  wild: { pwc: RawNode | null; fwc: RawNode | null } | null;
  subs: TSub | RawSubs | null;
}
interface RawSubs {
  size: number;
  plain: Set<TSub> | null;
  queues: Map<string, Set<TSub>> | null;
}

const isLeaf = (slot: RawNode | TSub): slot is TSub => "id" in slot;

/**
 * Checks the trie's storage invariants and returns what it holds: a child or a subscription on
 * its own is inline (no Map of one child, no set of one subscription), containers are never empty,
 * a container's size is its member count, no node but the root is empty; a leaf is a literal
 * subscription under its own first token there, and compression is complete: no node on a literal
 * path holds just one subscription (its own or a leaf) and nothing else. Throws on a violation.
 */
function trieShape(sl: Sublist<TSub>): { nodes: number; maps: number; subSets: number; subs: number; leaves: number } {
  const out = { nodes: 0, maps: 0, subSets: 0, subs: 0, leaves: 0 };
  const fail = (path: string, what: string): never => {
    throw new Error(`trie at ${JSON.stringify(path)}: ${what}`);
  };
  const slot = (child: RawNode | TSub, token: string | null, prefix: string, literalPath: boolean): void => {
    if (!isLeaf(child)) {
      if (token !== null && child.token !== token) fail(prefix, `child ${token} has token ${child.token}`);
      walk(child, prefix + child.token, false, literalPath);
      return;
    }
    out.leaves++;
    out.subs++;
    const subject = child.subject;
    if (!literalPath) fail(prefix, `a leaf ${subject} below a wildcard`);
    if (!subjectIsLiteral(subject)) fail(prefix, `a wildcard subscription ${subject} as a leaf`);
    if (!subject.startsWith(prefix)) fail(prefix, `a leaf ${subject} off its path`);
    const rest = subject.slice(prefix.length);
    if (token !== null && rest.split(".")[0] !== token) fail(prefix, `leaf ${subject} under token ${token}`);
  };
  const walk = (node: RawNode, path: string, isRoot: boolean, literalPath: boolean): void => {
    out.nodes++;
    const subs = node.subs;
    if (subs !== null) {
      if ("id" in subs) {
        out.subs++;
        if (subs.subject !== path) fail(path, `holds a subscription to ${subs.subject}`);
      } else {
        out.subSets++;
        let n = 0;
        if (subs.plain !== null) {
          if (subs.plain.size === 0) fail(path, "empty plain set");
          for (const s of subs.plain) if (s.queue !== null || s.subject !== path) fail(path, `plain set holds ${s.subject} ${s.queue}`);
          n += subs.plain.size;
        }
        if (subs.queues !== null) {
          if (subs.queues.size === 0) fail(path, "empty queue map");
          for (const [name, members] of subs.queues) {
            if (members.size === 0) fail(path, `empty queue group ${name}`);
            for (const s of members) if (s.queue !== name || s.subject !== path) fail(path, `group ${name} holds ${s.subject} ${s.queue}`);
            n += members.size;
          }
        }
        if (n !== subs.size) fail(path, `set size ${subs.size}, holds ${n}`);
        if (n < 2) fail(path, `a set of ${n} subscription(s) (one must be inline)`);
        out.subs += n;
      }
    }
    const prefix = isRoot ? "" : `${path}.`;
    const kids = node.kids;
    if (kids instanceof Map) {
      out.maps++;
      if (kids.size < 2) fail(path, `a Map of ${kids.size} child(ren)`);
      for (const [key, child] of kids) {
        if (numericKey(String(key)) !== key) fail(path, `Map key ${JSON.stringify(key)} is not numericKey(token)`);
        slot(child, String(key), prefix, literalPath);
      }
    } else if (kids !== null) {
      slot(kids, null, prefix, literalPath);
    }
    if (node.wild !== null) {
      const { pwc, fwc } = node.wild;
      if (pwc === null && fwc === null) fail(path, "an empty wildcard holder");
      if (pwc !== null) walk(pwc, `${prefix}*`, false, false);
      if (fwc !== null) {
        if (fwc.kids !== null || fwc.wild !== null) fail(path, "a `>` node with children");
        walk(fwc, `${prefix}>`, false, false);
      }
    }
    if (!isRoot && subs === null && kids === null && node.wild === null) fail(path, "an empty node (not pruned)");
    if (!isRoot && literalPath && node.wild === null) {
      const loneOwn = kids === null && subs !== null && "id" in subs;
      const loneLeaf = subs === null && kids !== null && !(kids instanceof Map) && isLeaf(kids);
      if (loneOwn || loneLeaf) fail(path, "a node holding one subscription and nothing else (should be a leaf)");
    }
  };
  walk((sl as unknown as { root: RawNode }).root, "", true, true);
  return out;
}

describe("Sublist matching", () => {
  test("literal subjects match only themselves", () => {
    const sl = new Sublist<TSub>();
    const a = sub("foo.bar");
    const b = sub("foo");
    sl.insert(a);
    sl.insert(b);
    expect(view(sl.match("foo.bar")).plain).toEqual([a.id]);
    expect(view(sl.match("foo")).plain).toEqual([b.id]);
    expect(sl.match("foo.baz")).toBe(EMPTY_RESULT);
    expect(sl.match("foo.bar.baz")).toBe(EMPTY_RESULT);
    expect(sl.match("bar")).toBe(EMPTY_RESULT);
  });

  test("`*` matches exactly one token", () => {
    const sl = new Sublist<TSub>();
    const s = sub("foo.*");
    sl.insert(s);
    expect(view(sl.match("foo.bar")).plain).toEqual([s.id]);
    expect(view(sl.match("foo.baz")).plain).toEqual([s.id]);
    expect(sl.match("foo")).toBe(EMPTY_RESULT);
    expect(sl.match("foo.bar.baz")).toBe(EMPTY_RESULT);
    expect(sl.match("bar.foo")).toBe(EMPTY_RESULT);
  });

  test("`*` in the middle and at the start", () => {
    const sl = new Sublist<TSub>();
    const mid = sub("foo.*.baz");
    const first = sub("*.bar");
    sl.insert(mid);
    sl.insert(first);
    expect(view(sl.match("foo.x.baz")).plain).toEqual([mid.id]);
    expect(sl.match("foo.x.bar")).toBe(EMPTY_RESULT);
    expect(sl.match("foo.baz")).toBe(EMPTY_RESULT);
    expect(view(sl.match("x.bar")).plain).toEqual([first.id]);
    expect(sl.match("bar")).toBe(EMPTY_RESULT);
  });

  test("`>` needs at least one more token", () => {
    const sl = new Sublist<TSub>();
    const s = sub("foo.>");
    sl.insert(s);
    expect(sl.match("foo")).toBe(EMPTY_RESULT);
    expect(view(sl.match("foo.bar")).plain).toEqual([s.id]);
    expect(view(sl.match("foo.bar.baz.qux")).plain).toEqual([s.id]);
    expect(sl.match("bar.foo")).toBe(EMPTY_RESULT);
  });

  test("a bare `>` matches every subject of one or more tokens; `*` only one token", () => {
    const sl = new Sublist<TSub>();
    const all = sub(">");
    const one = sub("*");
    sl.insert(all);
    sl.insert(one);
    expect(view(sl.match("a")).plain).toEqual([all.id, one.id]);
    expect(view(sl.match("a.b")).plain).toEqual([all.id]);
    expect(view(sl.match("a.b.c.d.e.f")).plain).toEqual([all.id]);
  });

  test("overlapping subscriptions all match, each once", () => {
    const sl = new Sublist<TSub>();
    const subs = [sub("a.b.c"), sub("a.*.c"), sub("a.>"), sub("*.*.*"), sub(">"), sub("a.b.*"), sub("*.b.>")];
    const miss = [sub("a.b"), sub("a.*"), sub("b.>"), sub("a.b.c.d")];
    for (const s of [...subs, ...miss]) sl.insert(s);
    expect(view(sl.match("a.b.c")).plain).toEqual(ids(subs));
  });

  test("subjects with an empty token match nothing and are not cached", () => {
    const sl = new Sublist<TSub>();
    sl.insert(sub(">"));
    for (const s of ["", ".", "a.", ".a", "a..b"]) expect(sl.match(s)).toBe(EMPTY_RESULT);
    expect(sl.stats().num_cache).toBe(0);
  });

  test("wildcard tokens in a published subject are matched only by wildcard subs (as nats-server)", () => {
    const sl = new Sublist<TSub>();
    const lit = sub("foo.bar");
    const pwc = sub("foo.*");
    const fwc = sub("foo.>");
    sl.insert(lit);
    sl.insert(pwc);
    sl.insert(fwc);
    expect(view(sl.match("foo.*")).plain).toEqual([pwc.id, fwc.id]);
    expect(view(sl.match("foo.>")).plain).toEqual([pwc.id, fwc.id]);
  });

  test("latin1 subjects", () => {
    const sl = new Sublist<TSub>();
    const s = sub("caf\u00e9.*");
    sl.insert(s);
    expect(view(sl.match("caf\u00e9.\u00ff")).plain).toEqual([s.id]);
    expect(sl.match("cafe.x")).toBe(EMPTY_RESULT);
  });

  test("queue subscriptions are grouped by name across literal and wildcard subs", () => {
    const sl = new Sublist<TSub>();
    const q1a = sub("orders.new", "workers");
    const q1b = sub("orders.*", "workers");
    const q1c = sub("orders.>", "workers");
    const q2 = sub("orders.new", "auditors");
    const plain = sub("orders.new");
    const other = sub("orders.old", "workers");
    for (const s of [q1a, q1b, q1c, q2, plain, other]) sl.insert(s);
    const r = sl.match("orders.new");
    expect(r.queues.length).toBe(2);
    expect(view(r)).toEqual({
      plain: [plain.id],
      queues: { workers: ids([q1a, q1b, q1c]), auditors: [q2.id] },
    });
  });

  test("invalid subjects are refused on insert", () => {
    const sl = new Sublist<TSub>();
    for (const s of ["", "foo..bar", "foo.>.bar", ".foo", "foo.", "foo bar"]) {
      expect(() => sl.insert(sub(s))).toThrow();
    }
    expect(sl.count).toBe(0);
    expect(trieIsEmpty(sl)).toBe(true);
  });
});

describe("Sublist bookkeeping", () => {
  test("remove by identity; count; generation", () => {
    const sl = new Sublist<TSub>();
    const a = sub("foo.bar");
    const twin = sub("foo.bar"); // same subject, different subscription
    const q = sub("foo.bar", "q");
    expect(sl.generation).toBe(0);
    sl.insert(a);
    sl.insert(q);
    expect(sl.count).toBe(2);
    expect(sl.generation).toBe(2);

    expect(sl.remove(twin)).toBe(false);
    expect(sl.remove(sub("foo.baz"))).toBe(false);
    expect(sl.remove(sub("foo.bar", "other"))).toBe(false);
    expect(sl.remove(sub("foo.*"))).toBe(false);
    expect(sl.generation).toBe(2); // nothing changed
    expect(sl.count).toBe(2);

    sl.match("foo.bar");
    expect(sl.generation).toBe(2); // matching changes nothing

    expect(sl.remove(a)).toBe(true);
    expect(sl.generation).toBe(3);
    expect(sl.remove(a)).toBe(false);
    expect(sl.count).toBe(1);
    expect(view(sl.match("foo.bar"))).toEqual({ plain: [], queues: { q: [q.id] } });
    expect(sl.remove(q)).toBe(true);
    expect(sl.count).toBe(0);
    expect(sl.generation).toBe(4);
    expect(sl.match("foo.bar")).toBe(EMPTY_RESULT);
  });

  test("inserting the same subscription twice is a no-op", () => {
    const sl = new Sublist<TSub>();
    const a = sub("foo");
    const q = sub("foo", "g");
    sl.insert(a);
    primed(sl, "foo"); // cached
    sl.insert(a);
    sl.insert(q);
    sl.insert(q);
    expect(sl.count).toBe(2);
    expect(sl.generation).toBe(2);
    expect(view(sl.match("foo"))).toEqual({ plain: [a.id], queues: { g: [q.id] } });
    expect(sl.remove(a)).toBe(true);
    expect(sl.remove(q)).toBe(true);
    expect(sl.match("foo")).toBe(EMPTY_RESULT);
  });

  test("remove prunes empty trie nodes (inbox churn leaves nothing behind)", () => {
    const sl = new Sublist<TSub>();
    const keep = sub("svc.echo");
    sl.insert(keep);
    for (let i = 0; i < 2000; i++) {
      const inbox = sub(`_INBOX.${i.toString(36)}.${i}`);
      const wild = sub(`_INBOX.${i.toString(36)}.*`);
      sl.insert(inbox);
      sl.insert(wild);
      expect(view(sl.match(`_INBOX.${i.toString(36)}.${i}`)).plain).toEqual([inbox.id, wild.id]);
      expect(sl.remove(inbox)).toBe(true);
      expect(sl.remove(wild)).toBe(true);
    }
    expect(sl.count).toBe(1);
    expect(sl.all()).toEqual([keep]);
    expect(sl.remove(keep)).toBe(true);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("prunes wildcard children and keeps nodes that still hold subs or children", () => {
    const sl = new Sublist<TSub>();
    const deep = sub("a.*.>");
    const mid = sub("a.*");
    sl.insert(deep);
    sl.insert(mid);
    expect(sl.remove(deep)).toBe(true);
    expect(view(sl.match("a.b")).plain).toEqual([mid.id]);
    expect(sl.match("a.b.c")).toBe(EMPTY_RESULT);
    expect(sl.remove(mid)).toBe(true);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("a lone child is inline; a second makes a Map; back to one is inline again; none is pruned", () => {
    const sl = new Sublist<TSub>();
    const ab = sub("a.b");
    const ac = sub("a.c");
    const ax = sub("a.*");
    sl.insert(ab); // alone: a leaf under the root, no node for `a` nor `b`
    expect(trieShape(sl)).toEqual({ nodes: 1, maps: 0, subSets: 0, subs: 1, leaves: 1 });
    sl.insert(ac); // `a` becomes a node; both are leaves in its Map
    expect(trieShape(sl)).toEqual({ nodes: 2, maps: 1, subSets: 0, subs: 2, leaves: 2 });
    sl.insert(ax); // a wildcard child does not count among the literal ones
    expect(trieShape(sl)).toEqual({ nodes: 3, maps: 1, subSets: 0, subs: 3, leaves: 2 });
    expect(view(sl.match("a.c")).plain).toEqual([ac.id, ax.id]);
    expect(sl.remove(ab)).toBe(true);
    expect(trieShape(sl)).toEqual({ nodes: 3, maps: 0, subSets: 0, subs: 2, leaves: 1 });
    expect(view(sl.match("a.c")).plain).toEqual([ac.id, ax.id]);
    expect(view(sl.match("a.b")).plain).toEqual([ax.id]);
    expect(sl.remove(ac)).toBe(true);
    expect(view(sl.match("a.c")).plain).toEqual([ax.id]);
    expect(sl.remove(ax)).toBe(true);
    expect(sl.match("a.c")).toBe(EMPTY_RESULT);
    expect(trieIsEmpty(sl)).toBe(true);
    // The other order: the Map's first child leaves first; `a` folds back into the leaf left.
    sl.insert(ab);
    sl.insert(ac);
    expect(sl.remove(ac)).toBe(true);
    expect(trieShape(sl)).toEqual({ nodes: 1, maps: 0, subSets: 0, subs: 1, leaves: 1 });
    expect(view(sl.match("a.b")).plain).toEqual([ab.id]);
    expect(sl.match("a.c")).toBe(EMPTY_RESULT);
    expect(sl.remove(ab)).toBe(true);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("a leaf matches only its own subject, opens one level per subscription below it, and folds back", () => {
    const sl = new Sublist<TSub>();
    const deep = sub("m.1.2.x");
    sl.insert(deep);
    expect(trieShape(sl)).toEqual({ nodes: 1, maps: 0, subSets: 0, subs: 1, leaves: 1 });
    expect(view(sl.match("m.1.2.x")).plain).toEqual([deep.id]);
    for (const other of ["m", "m.1", "m.1.2", "m.1.2.y", "m.1.2.x.z", "m.1.3.x", "n.1.2.x"]) expect(sl.match(other)).toBe(EMPTY_RESULT);
    const mid = sub("m.1");
    sl.insert(mid); // `m` and `1` become nodes; `1` holds mid, and deep as a leaf under `2`
    expect(trieShape(sl)).toEqual({ nodes: 3, maps: 0, subSets: 0, subs: 2, leaves: 1 });
    expect(view(sl.match("m.1")).plain).toEqual([mid.id]);
    expect(view(sl.match("m.1.2.x")).plain).toEqual([deep.id]);
    const same = sub("m.1.2.x", "q"); // a second subscription to the leaf's subject: nodes down to it
    sl.insert(same);
    expect(trieShape(sl)).toEqual({ nodes: 5, maps: 0, subSets: 1, subs: 3, leaves: 0 });
    expect(view(sl.match("m.1.2.x"))).toEqual({ plain: [deep.id], queues: { q: [same.id] } });
    const star = sub("m.*.2.x"); // a wildcard beside the leaf's path: no leaf below `*`
    sl.insert(star);
    expect(view(sl.match("m.1.2.x"))).toEqual({ plain: [deep.id, star.id], queues: { q: [same.id] } });
    expect(view(sl.match("m.7.2.x")).plain).toEqual([star.id]);
    expect(sl.remove(mid)).toBe(true);
    expect(sl.remove(same)).toBe(true); // `x`, `2` and `1` fold into deep, a leaf of `m` beside its `*`
    expect(view(sl.match("m.1.2.x")).plain).toEqual([deep.id, star.id]);
    expect(sl.remove(star)).toBe(true); // the `*` branch goes; everything folds back into one leaf
    expect(trieShape(sl)).toEqual({ nodes: 1, maps: 0, subSets: 0, subs: 1, leaves: 1 });
    expect(sl.remove(sub("m.1.2.x"))).toBe(false); // same subject, not the one held
    expect(sl.remove(deep)).toBe(true);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("a lone subscription is inline, plain or queue; a second makes a set; back to one is inline again", () => {
    const sl = new Sublist<TSub>();
    const p1 = sub("s");
    const p2 = sub("s");
    const g1 = sub("s", "g");
    const g2 = sub("s", "g");
    const h1 = sub("s", "h");
    const shape = () => {
      const { subSets, subs } = trieShape(sl);
      return { subSets, subs };
    };
    const seen = () => view(sl.match("s"));

    sl.insert(g1); // a queue subscription alone: inline
    expect(shape()).toEqual({ subSets: 0, subs: 1 });
    expect(seen()).toEqual({ plain: [], queues: { g: [g1.id] } });
    sl.insert(g1); // again: a no-op on an inline subscription
    expect(sl.count).toBe(1);
    expect(sl.remove(g2)).toBe(false); // same subject and group, not the one held
    expect(sl.remove(p1)).toBe(false);
    sl.insert(p1);
    expect(shape()).toEqual({ subSets: 1, subs: 2 });
    expect(seen()).toEqual({ plain: [p1.id], queues: { g: [g1.id] } });
    sl.insert(g2);
    sl.insert(h1);
    sl.insert(p2);
    sl.insert(p2);
    expect(sl.count).toBe(5);
    expect(shape()).toEqual({ subSets: 1, subs: 5 });
    expect(seen()).toEqual({ plain: [p1.id, p2.id], queues: { g: [g1.id, g2.id], h: [h1.id] } });
    expect(sl.remove(g1)).toBe(true);
    expect(sl.remove(p1)).toBe(true);
    expect(sl.remove(p2)).toBe(true);
    expect(seen()).toEqual({ plain: [], queues: { g: [g2.id], h: [h1.id] } });
    expect(sl.remove(g2)).toBe(true); // one left, a queue member of h: inline again
    expect(shape()).toEqual({ subSets: 0, subs: 1 });
    expect(seen()).toEqual({ plain: [], queues: { h: [h1.id] } });
    expect(sl.remove(g2)).toBe(false);
    sl.insert(p2); // and back up from the inline one
    expect(shape()).toEqual({ subSets: 1, subs: 2 });
    expect(sl.remove(h1)).toBe(true); // one left, plain: inline
    expect(shape()).toEqual({ subSets: 0, subs: 1 });
    expect(seen()).toEqual({ plain: [p2.id], queues: {} });
    expect(sl.remove(p2)).toBe(true);
    expect(sl.match("s")).toBe(EMPTY_RESULT);
    expect(sl.count).toBe(0);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("a lone wildcard child goes when its last subscription does; the other one stays", () => {
    const sl = new Sublist<TSub>();
    const star = sub("a.*");
    const gt = sub("a.>");
    sl.insert(star);
    sl.insert(gt);
    expect(sl.remove(star)).toBe(true);
    expect(trieShape(sl).nodes).toBe(3);
    expect(view(sl.match("a.b")).plain).toEqual([gt.id]);
    sl.insert(star);
    expect(sl.remove(gt)).toBe(true);
    expect(trieShape(sl).nodes).toBe(3);
    expect(view(sl.match("a.b")).plain).toEqual([star.id]);
    expect(sl.match("a.b.c")).toBe(EMPTY_RESULT);
    expect(sl.remove(star)).toBe(true);
    expect(trieIsEmpty(sl)).toBe(true);
  });

  test("all() lists every subscription", () => {
    const sl = new Sublist<TSub>();
    const subs = [sub("a"), sub("a.b"), sub("a.*"), sub("a.>"), sub(">"), sub("*"), sub("a.b", "q"), sub("a.b", "r")];
    for (const s of subs) sl.insert(s);
    expect(ids(sl.all())).toEqual(ids(subs));
  });

  test("stats use nats-server's names and fanout rule (plain subs + queue groups, over cached results)", () => {
    const sl = new Sublist<TSub>();
    sl.insert(sub("a"));
    sl.insert(sub("a"));
    sl.insert(sub("a", "q"));
    sl.insert(sub("a", "q"));
    sl.insert(sub("a", "r"));
    sl.insert(sub("b"));
    expect(sl.remove(sub("zzz"))).toBe(false);
    const gone = sub("c");
    sl.insert(gone);
    sl.remove(gone);
    primed(sl, "a"); // fanout 2 plain + 2 groups = 4
    sl.match("a"); // the one hit
    primed(sl, "b"); // fanout 1
    primed(sl, "nothing"); // fanout 0, still cached
    sl.match("once"); // not cached: matched once
    expect(sl.stats()).toEqual({
      num_subscriptions: 6,
      num_cache: 3,
      num_inserts: 7,
      num_removes: 1,
      num_matches: 8,
      cache_hit_rate: 1 / 8,
      max_fanout: 4,
      avg_fanout: 5 / 3,
    });
    expect(new Sublist<TSub>().stats()).toEqual({
      num_subscriptions: 0,
      num_cache: 0,
      num_inserts: 0,
      num_removes: 0,
      num_matches: 0,
      cache_hit_rate: 0,
      max_fanout: 0,
      avg_fanout: 0,
    });
  });
});

describe("Sublist result cache", () => {
  test("a repeated match is a cache hit returning the same object", () => {
    const sl = new Sublist<TSub>();
    sl.insert(sub("foo.*"));
    sl.match("foo.bar");
    expect(sl.stats().num_cache).toBe(0); // the first miss is only remembered
    const r1 = sl.match("foo.bar"); // the second is cached
    expect(hits(sl)).toBe(0);
    const r2 = sl.match("foo.bar");
    expect(r2).toBe(r1);
    expect(hits(sl)).toBe(1);
    expect(sl.stats().num_cache).toBe(1);
  });

  test("no match is the shared frozen EMPTY_RESULT", () => {
    const sl = new Sublist<TSub>();
    expect(sl.match("x")).toBe(EMPTY_RESULT);
    expect(sl.match("x")).toBe(EMPTY_RESULT);
    expect(sl.match("x")).toBe(EMPTY_RESULT);
    expect(hits(sl)).toBe(1); // negative results are cached too
    expect(Object.isFrozen(EMPTY_RESULT)).toBe(true);
    expect(Object.isFrozen(EMPTY_RESULT.plain)).toBe(true);
    expect(Object.isFrozen(EMPTY_RESULT.queues)).toBe(true);
  });

  test("inserting a literal sub patches only its own cache key", () => {
    const sl = new Sublist<TSub>();
    const w = sub("foo.*");
    sl.insert(w);
    const bar1 = primed(sl, "foo.bar");
    const baz1 = primed(sl, "foo.baz");
    const none1 = primed(sl, "other");
    const lit = sub("foo.bar");
    sl.insert(lit);
    const h = hits(sl);
    const bar2 = sl.match("foo.bar");
    expect(hits(sl)).toBe(h + 1); // served from the patched cache, not recomputed
    expect(bar2).not.toBe(bar1);
    expect(view(bar2).plain).toEqual([w.id, lit.id]);
    expect(view(bar1).plain).toEqual([w.id]); // the old result was not mutated
    expect(sl.match("foo.baz")).toBe(baz1);
    expect(sl.match("other")).toBe(none1);
    expect(sl.stats().num_cache).toBe(3); // nothing was wiped
  });

  test("inserting a wildcard sub patches every cached subject it matches, and only those", () => {
    const sl = new Sublist<TSub>();
    const rA = primed(sl, "a.b"); // empty results cached
    const rB = primed(sl, "a.c");
    const rC = primed(sl, "a.b.c");
    const rD = primed(sl, "x.y");
    expect([rA, rB, rC, rD].every((r) => r === EMPTY_RESULT)).toBe(true);
    const w = sub("a.*");
    const q = sub("a.>", "g");
    sl.insert(w);
    sl.insert(q);
    const h = hits(sl);
    expect(view(sl.match("a.b"))).toEqual({ plain: [w.id], queues: { g: [q.id] } });
    expect(view(sl.match("a.c"))).toEqual({ plain: [w.id], queues: { g: [q.id] } });
    expect(view(sl.match("a.b.c"))).toEqual({ plain: [], queues: { g: [q.id] } });
    expect(sl.match("x.y")).toBe(EMPTY_RESULT);
    expect(hits(sl)).toBe(h + 4);
    expect(EMPTY_RESULT.plain.length + EMPTY_RESULT.queues.length).toBe(0);
  });

  test("removing subs patches cached results; the last one out leaves EMPTY_RESULT", () => {
    const sl = new Sublist<TSub>();
    const lit = sub("a.b");
    const w = sub("a.*");
    const q1 = sub("a.>", "g");
    const q2 = sub("a.b", "g");
    for (const s of [lit, w, q1, q2]) sl.insert(s);
    const before = primed(sl, "a.b");
    const other = primed(sl, "a.c");
    expect(view(before)).toEqual({ plain: ids([lit, w]), queues: { g: ids([q1, q2]) } });
    const snapshot = view(before);

    sl.remove(w);
    expect(view(sl.match("a.b"))).toEqual({ plain: [lit.id], queues: { g: ids([q1, q2]) } });
    expect(view(sl.match("a.c"))).toEqual({ plain: [], queues: { g: [q1.id] } });
    sl.remove(q2);
    expect(view(sl.match("a.b"))).toEqual({ plain: [lit.id], queues: { g: [q1.id] } });
    sl.remove(q1);
    expect(view(sl.match("a.b"))).toEqual({ plain: [lit.id], queues: {} });
    expect(sl.match("a.b").queues.length).toBe(0); // the emptied group is gone
    expect(sl.match("a.c")).toBe(EMPTY_RESULT);
    sl.remove(lit);
    expect(sl.match("a.b")).toBe(EMPTY_RESULT);

    const st = sl.stats();
    expect(st.num_cache).toBe(2);
    expect(Math.round(st.cache_hit_rate * st.num_matches)).toBe(st.num_matches - 4); // all but priming served by the cache
    expect(view(before)).toEqual(snapshot); // results handed out earlier never change
    expect(view(other)).toEqual({ plain: [w.id], queues: { g: [q1.id] } });
  });

  test("a result being iterated is not disturbed by removes during the iteration", () => {
    const sl = new Sublist<TSub>();
    const subs = Array.from({ length: 10 }, () => sub("t.x"));
    for (const s of subs) sl.insert(s);
    const r = sl.match("t.x");
    let seen = 0;
    for (const s of r.plain) {
      sl.remove(s); // e.g. auto-unsubscribe after one delivery
      seen++;
    }
    expect(seen).toBe(10);
    expect(r.plain.length).toBe(10);
    expect(sl.match("t.x")).toBe(EMPTY_RESULT);
  });

  test("the cache never holds more than its bound", () => {
    const sl = new Sublist<TSub>();
    const s = sub("s.*");
    sl.insert(s);
    let maxSeen = 0;
    for (let i = 0; i < 5000; i++) {
      expect(view(primed(sl, `s.${i}`)).plain).toEqual([s.id]);
      maxSeen = Math.max(maxSeen, sl.stats().num_cache);
    }
    expect(maxSeen).toBe(DEFAULT_CACHE_MAX);
    expect(sl.stats().num_cache).toBeLessThanOrEqual(DEFAULT_CACHE_MAX);
    expect(sl.stats().num_cache).toBeGreaterThanOrEqual(DEFAULT_CACHE_MAX / 2); // a sweep keeps a warm part
    // The newest entries survive eviction.
    const h = hits(sl);
    sl.match("s.4999");
    expect(hits(sl)).toBe(h + 1);

    const small = new Sublist<TSub>({ cacheMax: 8 });
    for (let i = 0; i < 100; i++) {
      primed(small, `k.${i}`);
      expect(small.stats().num_cache).toBeLessThanOrEqual(8);
    }
  });

  test("a subject matched once is not cached: unique reply subjects leave the cache to the subjects used again", () => {
    const sl = new Sublist<TSub>();
    const inbox = sub("_INBOX.abc.*");
    const service = sub("svc.echo");
    sl.insert(inbox);
    sl.insert(service);
    const hot = primed(sl, "svc.echo");
    for (let i = 0; i < 5000; i++) expect(view(sl.match(`_INBOX.abc.${i}`)).plain).toEqual([inbox.id]);
    // 5000 replies cached next to nothing (the admission filter's rare false "seen") and evicted nothing.
    expect(sl.stats().num_cache).toBeLessThanOrEqual(1 + 50);
    let h = hits(sl);
    expect(sl.match("svc.echo")).toBe(hot);
    expect(hits(sl)).toBe(h + 1);
    // A reply subject used again is cached at its second miss, like any other.
    sl.match("_INBOX.abc.4999"); // its first miss was the last one
    h = hits(sl);
    sl.match("_INBOX.abc.4999");
    expect(hits(sl)).toBe(h + 1);
  });

  test("a publisher cycling over up to cacheMax subjects has all of them cached from its second round", () => {
    const sl = new Sublist<TSub>();
    const sensors = sub("sensor.*");
    sl.insert(sensors);
    for (let round = 0; round < 2; round++) for (let i = 0; i < 1000; i++) sl.match(`sensor.${i}`);
    expect(sl.stats().num_cache).toBe(1000);
    const h = hits(sl);
    for (let i = 0; i < 1000; i++) expect(view(sl.match(`sensor.${i}`)).plain).toEqual([sensors.id]);
    expect(hits(sl)).toBe(h + 1000);
  });

  test("cacheMax 0 disables the cache", () => {
    const sl = new Sublist<TSub>({ cacheMax: 0 });
    const s = sub("a.>");
    sl.insert(s);
    expect(view(sl.match("a.b")).plain).toEqual([s.id]);
    expect(view(sl.match("a.b")).plain).toEqual([s.id]);
    expect(sl.stats().num_cache).toBe(0);
    expect(hits(sl)).toBe(0);
    expect(() => new Sublist<TSub>({ cacheMax: -1 })).toThrow(RangeError);
  });
});

// ---- Property test: the Sublist against brute force over the live set ----

/** mulberry32: a small seeded PRNG, so a failing run reproduces from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PropConfig {
  name: string;
  cacheMax: number | undefined;
  alphabet: string[];
  minDepth: number; // of published subjects
  maxDepth: number;
  steps: number;
  liveTarget: number;
  minHitRate: number; // asserts the cache really was exercised (warm) or thrashed
  maxHitRate: number;
  /** Check the trie's storage invariants after every step (trieShape), not only every 97th. */
  shapeEveryStep?: boolean;
  /** Queue group names to draw from (default q1..q3). */
  queues?: string[];
  /** Chance of a `*` token in a subscribed subject (default 0.3). */
  starRate?: number;
  /** Largest subscribed depth (default 4). */
  maxSubDepth?: number;
}

function sameView(a: ReturnType<typeof view>, b: ReturnType<typeof view>): boolean {
  const key = (v: ReturnType<typeof view>) =>
    JSON.stringify([v.plain, Object.entries(v.queues).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))]);
  return key(a) === key(b);
}

function runProperty(cfg: PropConfig, seed: number): void {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const ctx = (step: number, what: string) => `[${cfg.name}] seed=${seed} step=${step}: ${what}`;

  const sl = new Sublist<TSub>(cfg.cacheMax === undefined ? {} : { cacheMax: cfg.cacheMax });
  const cacheMax = cfg.cacheMax ?? DEFAULT_CACHE_MAX;
  const live: TSub[] = [];
  const removed: TSub[] = [];
  const kept: { r: SublistResult<TSub>; snap: ReturnType<typeof view> }[] = [];
  let id = 0;
  let generation = 0;

  const subSubject = (): string => {
    const depth = 1 + Math.floor(rnd() * (cfg.maxSubDepth ?? 4));
    const toks: string[] = [];
    for (let i = 0; i < depth; i++) {
      const x = rnd();
      if (i === depth - 1 && x < 0.12) toks.push(">");
      else if (x < (cfg.starRate ?? 0.3)) toks.push("*");
      else toks.push(pick(cfg.alphabet));
    }
    return toks.join(".");
  };
  const pubSubject = (): string => {
    const depth = cfg.minDepth + Math.floor(rnd() * (cfg.maxDepth - cfg.minDepth + 1));
    const toks: string[] = [];
    for (let i = 0; i < depth; i++) {
      const x = rnd();
      // Rarely: what a non-pedantic client may publish (wildcard tokens) or a malformed subject.
      if (x < 0.005) toks.push("*");
      else if (x < 0.01) toks.push(">");
      else if (x < 0.012) toks.push("");
      else toks.push(pick(cfg.alphabet));
    }
    return toks.join(".");
  };

  for (let step = 0; step < cfg.steps; step++) {
    const x = rnd();
    const pInsert = live.length < cfg.liveTarget ? 0.35 : 0.15;
    if (x < pInsert) {
      const s: TSub = { id: ++id, subject: subSubject(), queue: rnd() < 0.3 ? pick(cfg.queues ?? ["q1", "q2", "q3"]) : null };
      sl.insert(s);
      live.push(s);
      generation++;
    } else if (x < 0.4 && live.length > 0) {
      const at = Math.floor(rnd() * live.length);
      const s = live[at]!;
      live[at] = live[live.length - 1]!;
      live.pop();
      expect(sl.remove(s), ctx(step, `remove ${s.subject}`)).toBe(true);
      removed.push(s);
      generation++;
    } else if (x < 0.42 && removed.length > 0) {
      const s = pick(removed);
      expect(sl.remove(s), ctx(step, `re-remove ${s.subject}`)).toBe(false);
    } else {
      const subject = pubSubject();
      const r = sl.match(subject);
      const want = {
        plain: ids(live.filter((s) => s.queue === null && subjectMatches(s.subject, subject))),
        queues: {} as Record<string, number[]>,
      };
      for (const s of live) {
        if (s.queue !== null && subjectMatches(s.subject, subject)) (want.queues[s.queue] ??= []).push(s.id);
      }
      for (const q of Object.keys(want.queues)) want.queues[q]!.sort((a, b) => a - b);
      const got = view(r);
      if (!sameView(got, want)) expect(got, ctx(step, `match ${JSON.stringify(subject)}`)).toEqual(want);
      if (want.plain.length === 0 && Object.keys(want.queues).length === 0 && r !== EMPTY_RESULT) {
        expect.fail(ctx(step, `no match for ${JSON.stringify(subject)} but not EMPTY_RESULT`));
      }
      if (kept.length < 50 && rnd() < 0.05) kept.push({ r, snap: view(r) });
    }
    if (sl.count !== live.length) expect(sl.count, ctx(step, "count")).toBe(live.length);
    if (sl.generation !== generation) expect(sl.generation, ctx(step, "generation")).toBe(generation);
    if (cfg.shapeEveryStep === true || step % 97 === 0) {
      const shape = trieShape(sl);
      if (shape.subs !== live.length) expect(shape.subs, ctx(step, "subscriptions held by the trie")).toBe(live.length);
    }
    if (step % 97 === 0) {
      expect(sl.stats().num_cache, ctx(step, "cache bound")).toBeLessThanOrEqual(cacheMax);
      expect(ids(sl.all()), ctx(step, "all()")).toEqual(ids(live));
    }
  }

  for (const k of kept) expect(view(k.r), `[${cfg.name}] seed=${seed}: a handed-out result changed`).toEqual(k.snap);
  // Drain: the trie must prune back to nothing.
  for (const s of live) expect(sl.remove(s)).toBe(true);
  expect(sl.count).toBe(0);
  expect(trieIsEmpty(sl), `[${cfg.name}] seed=${seed}: trie not pruned`).toBe(true);

  const rate = sl.stats().cache_hit_rate;
  expect(rate, `[${cfg.name}] seed=${seed}: hit rate`).toBeGreaterThanOrEqual(cfg.minHitRate);
  expect(rate, `[${cfg.name}] seed=${seed}: hit rate`).toBeLessThanOrEqual(cfg.maxHitRate);
}

describe("Sublist property: matches equal brute force over the live set", () => {
  const envSeed = process.env.SUBLIST_SEED;
  const seeds = envSeed !== undefined ? [Number(envSeed) >>> 0] : [1, 2, 3, (Math.random() * 2 ** 32) >>> 0];
  const configs: PropConfig[] = [
    // ~120 distinct subjects: the cache stays warm.
    { name: "warm", cacheMax: undefined, alphabet: ["a", "b", "c"], minDepth: 1, maxDepth: 4, steps: 6000, liveTarget: 300, minHitRate: 0.6, maxHitRate: 1 },
    // ~9000 distinct subjects against the default 1024-entry cache: constant eviction.
    { name: "thrash-default", cacheMax: undefined, alphabet: ["a", "b", "c", "d", "e", "f"], minDepth: 4, maxDepth: 5, steps: 6000, liveTarget: 300, minHitRate: 0, maxHitRate: 0.35 },
    // A tiny cache: most matches miss, and patches hit the few survivors (hit rate up to 0.31 over ~100 seeds
    // since admission at the second miss keeps the cache's survivors longer; warm is ≥ 0.6).
    { name: "thrash-small", cacheMax: 8, alphabet: ["a", "b", "c"], minDepth: 1, maxDepth: 4, steps: 6000, liveTarget: 200, minHitRate: 0, maxHitRate: 0.4 },
    // No cache at all.
    { name: "no-cache", cacheMax: 0, alphabet: ["a", "b", "c"], minDepth: 1, maxDepth: 3, steps: 2000, liveTarget: 100, minHitRate: 0, maxHitRate: 0 },
    // A handful of live subscriptions over few subjects: nodes keep going 0 -> 1 -> 2 -> 1 -> 0 children
    // and subscriptions (inline, then Map/set, then inline again), queue groups too; shape checked every step.
    { name: "inline-flips", cacheMax: 16, alphabet: ["a", "b"], minDepth: 1, maxDepth: 3, steps: 4000, liveTarget: 6, minHitRate: 0, maxHitRate: 1,
      shapeEveryStep: true, queues: ["q1", "q2"], starRate: 0.15, maxSubDepth: 3 },
    // Tokens in digits (numbers as Map keys) next to look-alike texts that must stay apart from them.
    { name: "numeric-tokens", cacheMax: 16, alphabet: ["1", "01", "0", "1a", "10"], minDepth: 1, maxDepth: 3, steps: 4000, liveTarget: 30, minHitRate: 0, maxHitRate: 1,
      shapeEveryStep: true, queues: ["q1"], starRate: 0.15, maxSubDepth: 3 },
  ];
  for (const cfg of configs) {
    test.each(seeds)(`${cfg.name}, seed %i`, (seed) => {
      console.log(`sublist property ${cfg.name}: seed ${seed} (rerun with SUBLIST_SEED=${seed})`);
      runProperty(cfg, seed);
    });
  }
});
