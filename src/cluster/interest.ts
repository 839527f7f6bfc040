// Local interest: what this node tells the other nodes it wants. One entry per subject (plain
// subscriptions) and per subject + queue group, reference-counted over the local subscriptions, so
// only a 0 → 1 or 1 → 0 change goes on the wire. Request-reply churns inbox subscriptions all the
// time; a second subscriber on a subject, or one of many leaving it, costs no frame at all.
//
// A queue group also carries a weight (how many local members it has) for the other nodes' choice
// among remote groups; weight changes are only about fairness, so they are coalesced and sent once
// per tick. 0 → 1 and 1 → 0 go out at once, in order with the messages on the route: a SUB followed
// by a request must reach the other node before the request does, or the reply finds no interest.
//
// Not told: the other nodes' interest (a route's subscriptions), the interest of a hub this node is a
// leaf of (every node has its own connection to it), and internal subscriptions made local-only
// (InternalClient.subscribe(..., { local: true })). Told: the interest of leaf nodes attached to this
// node (a leaf connection where this node is the hub), so the whole cluster serves them.
import { Sublist, type SublistEntry } from "../subjects/sublist.ts";
import type { Subscription } from "../subscription.ts";

export interface SublistObserver<S> {
  added(sub: S): void;
  removed(sub: S): void;
}

/** A Sublist that reports each subscription added or removed (the cluster's view of local interest). */
export class ObservedSublist<S extends SublistEntry> extends Sublist<S> {
  observer: SublistObserver<S> | null = null;

  override insert(sub: S): void {
    const before = this.count;
    super.insert(sub);
    if (this.observer !== null && this.count !== before) this.observer.added(sub);
  }

  override remove(sub: S): boolean {
    const removed = super.remove(sub);
    if (removed && this.observer !== null) this.observer.removed(sub);
    return removed;
  }
}

/**
 * Whether a subscription's interest belongs to this node for the cluster: clients', internal clients',
 * and those of leaf nodes attached here (a leaf connection where we are not the spoke), and our hub's
 * when the link is every --procs worker's (Subscriber.sharedHubLink).
 */
function isClusterLocal(sub: Subscription): boolean {
  const client = sub.client;
  if (client.isRoute === true && (client.isLeaf !== true || (client.isSpoke === true && client.sharedHubLink !== true))) return false;
  return !isLocalOnly(sub);
}

/**
 * A subscription the other nodes must not hear of: an internal client's, subscribed with
 * `{ local: true }` (src/internal-client.ts). Only this node's publishers reach it.
 */
export function isLocalOnly(sub: Subscription): boolean {
  return (sub as Subscription & { local?: boolean }).local === true;
}

interface QueueInterest {
  readonly subject: string;
  readonly queue: string;
  count: number;
  /** The weight the other nodes were last told. */
  sentWeight: number;
}

/** Where interest changes go: every route (weight < 0 = no more interest). */
export type InterestSender = (subject: string, queue: string | null, weight: number) => void;

export class LocalInterest implements SublistObserver<Subscription> {
  private readonly plain = new Map<string, number>();
  private readonly queues = new Map<string, QueueInterest>();
  private readonly weightChanged = new Set<QueueInterest>();
  private weightFlushScheduled = false;

  constructor(private readonly send: InterestSender) {}

  /** Number of interest keys (subjects + subject/queue pairs) the other nodes know from us. */
  get size(): number {
    return this.plain.size + this.queues.size;
  }

  added(sub: Subscription): void {
    if (!isClusterLocal(sub)) return; // other nodes' and our hub's interest is never passed on; local-only stays here
    const queue = sub.queue;
    if (queue === null) {
      const n = this.plain.get(sub.subject) ?? 0;
      this.plain.set(sub.subject, n + 1);
      if (n === 0) this.send(sub.subject, null, 1);
      return;
    }
    const key = `${sub.subject} ${queue}`;
    const entry = this.queues.get(key);
    if (entry === undefined) {
      this.queues.set(key, { subject: sub.subject, queue, count: 1, sentWeight: 1 });
      this.send(sub.subject, queue, 1);
    } else {
      entry.count++;
      this.weightLater(entry);
    }
  }

  removed(sub: Subscription): void {
    if (!isClusterLocal(sub)) return;
    const queue = sub.queue;
    if (queue === null) {
      const n = this.plain.get(sub.subject);
      if (n === undefined) return;
      if (n > 1) this.plain.set(sub.subject, n - 1);
      else {
        this.plain.delete(sub.subject);
        this.send(sub.subject, null, -1);
      }
      return;
    }
    const key = `${sub.subject} ${queue}`;
    const entry = this.queues.get(key);
    if (entry === undefined) return;
    if (--entry.count > 0) this.weightLater(entry);
    else {
      this.queues.delete(key);
      this.weightChanged.delete(entry);
      this.send(sub.subject, queue, -1);
    }
  }

  /** Calls `fn` for every key with its weight: the whole table, for a route that just opened. */
  forEach(fn: InterestSender): void {
    for (const subject of this.plain.keys()) fn(subject, null, 1);
    for (const entry of this.queues.values()) fn(entry.subject, entry.queue, entry.count);
  }

  private weightLater(entry: QueueInterest): void {
    this.weightChanged.add(entry);
    if (this.weightFlushScheduled) return;
    this.weightFlushScheduled = true;
    queueMicrotask(() => {
      this.weightFlushScheduled = false;
      for (const e of this.weightChanged) {
        if (e.count !== e.sentWeight) {
          e.sentWeight = e.count;
          this.send(e.subject, e.queue, e.count);
        }
      }
      this.weightChanged.clear();
    });
  }
}
