// An account: its own subject space. Clients of different accounts never see each other's messages
// unless one account exports a stream or service and the other imports it (src/accounts/imports.ts).
// As nats-server: the global account `$G` holds every client that authenticates without an account,
// and the system account (`$SYS` unless system_account names another) is where server events go.
import { ObservedSublist } from "../cluster/interest.ts";
import type { Subscription } from "../subscription.ts";
import type { AccountMappings } from "./mappings.ts";
import { NO_ACCOUNT_LIMITS, type AccountJetStreamOptions, type AccountLimitOptions, type AccountTraceOptions } from "./options.ts";

export class Account {
  /** Every subscription of the account's clients, internal clients, routes and leaf connections. */
  readonly sublist = new ObservedSublist<Subscription>();
  /** Client connections bound to the account now (for max_connections and the events' counts). */
  connections = 0;
  /** Leaf node connections bound to the account now (for max_leafnodes). */
  leafnodes = 0;
  /** Messages and bytes published into the account by its clients, and delivered to them (for /accountz-style stats and events). */
  inMsgs = 0;
  inBytes = 0;
  /** Subject mappings of what its clients publish (./mappings.ts); null: none (the publish path checks only this). */
  mappings: AccountMappings | null = null;
  /** `msg_trace`: where a sampled W3C `traceparent` is traced to (src/trace); null: such messages are not traced. */
  trace: AccountTraceOptions | null = null;

  constructor(
    readonly name: string,
    readonly limits: AccountLimitOptions = NO_ACCOUNT_LIMITS,
    /** JetStream for this account: null when not enabled. */
    readonly jetstream: AccountJetStreamOptions | null = null,
    /** The system account (events are published here). */
    readonly isSystem = false,
  ) {}

  /** The smaller of the server's max_payload and this account's (nats-server's minLimit). */
  maxPayload(serverMax: number): number {
    const own = this.limits.maxPayload;
    return own >= 0 && own < serverMax ? own : serverMax;
  }

  /** Whether a subscription more is allowed for a client that has `current` (the smaller of server and account limits). */
  subscriptionsFull(current: number, serverMax: number): boolean {
    const own = this.limits.maxSubscriptions;
    return (serverMax > 0 && current >= serverMax) || (own >= 0 && current >= own);
  }

  /** The effective max_subscriptions for a client of this account (0 = unlimited), for its log line. */
  maxSubscriptions(serverMax: number): number {
    const own = this.limits.maxSubscriptions;
    if (own < 0) return serverMax;
    return serverMax > 0 ? Math.min(serverMax, own) : own;
  }

  get connectionsFull(): boolean {
    return this.limits.maxConnections >= 0 && this.connections >= this.limits.maxConnections;
  }

  get leafnodesFull(): boolean {
    return this.limits.maxLeafnodes >= 0 && this.leafnodes >= this.limits.maxLeafnodes;
  }
}
