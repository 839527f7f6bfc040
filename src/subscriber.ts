import type { Subscription } from "./subscription.ts";

/**
 * Anything a subscription can deliver to: a client connection, or an internal client of the
 * server (streams, system events). Delivery gets the publisher's input bytes and offsets into
 * them; the subscriber copies what it needs before returning.
 */
export interface Subscriber {
  readonly closed: boolean;
  /**
   * True for a route to another cluster node (src/cluster/route.ts). Delivery uses it twice: a queue
   * group prefers local members, and a message that came from a route never goes to another route.
   */
  readonly isRoute?: boolean;
  /**
   * For a route: the other node's cluster member id (its HELLO's, null before it): a message that came over
   * it came from that node's clients (a replicated stream's leader tells that node its commits first:
   * src/jetstream/cluster/stream-replica.ts, read-after-write).
   */
  readonly memberId?: string | null;
  /**
   * True for a leafnode connection (src/leaf/connection.ts), which sets isRoute too: a queue group
   * prefers local members to it, and routed messages go to it only when it is a leaf node attached
   * here (isSpoke false; src/router.ts deliverRouted). Its own delivery rules for
   * messages that came in over a leaf connection are in src/leaf/deliver.ts.
   */
  readonly isLeaf?: boolean;
  /**
   * For a leafnode connection: this server is the spoke on it (the other side is our hub). A leaf
   * connection where we are the hub (a leaf node attached to this server) counts as local for the
   * cluster: its interest is told to the other nodes, and messages from routes are delivered to it.
   */
  readonly isSpoke?: boolean;
  /**
   * For a spoke leafnode connection of a `--procs` worker (src/workers/): the workers' one link to the
   * hub (only worker 0 dials it), which stands for the whole natter. The other workers' interest is told
   * to the hub over it, messages from the hub go on to the routes, messages from routes go to the hub,
   * as if it were attached here (see src/leaf/deliver.ts).
   */
  readonly sharedHubLink?: boolean;
  /** Whether it wants messages with headers as HMSG (false: headers are stripped). */
  readonly headers: boolean;
  deliver(
    sub: Subscription,
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
    publisher: Subscriber | null,
  ): void;
}
