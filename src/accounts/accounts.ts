// The server's accounts: `$G`, the configured ones, and the system account. Built once from the
// options at start (accounts are not changed by a reload: a restart-only setting).
import type { Options } from "../options.ts";
import { Account } from "./account.ts";
import { AccountMappings } from "./mappings.ts";
import { DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT, unlimitedJetStream } from "./options.ts";

export class Accounts {
  readonly global: Account;
  /** Where server events are published; null with no_system_account. */
  readonly system: Account | null;
  private readonly byName = new Map<string, Account>();

  constructor(options: Options) {
    const systemName = options.noSystemAccount ? null : options.systemAccount || DEFAULT_SYSTEM_ACCOUNT;
    // $G has JetStream whenever the server has it and no account is configured (nats-server's behaviour
    // when the config has no accounts block); with accounts, only those that enable it have it.
    const globalJetStream = options.accounts.length === 0 ? unlimitedJetStream() : null;
    this.global = new Account(GLOBAL_ACCOUNT, undefined, globalJetStream);
    this.byName.set(GLOBAL_ACCOUNT, this.global);
    for (const a of options.accounts) this.byName.set(a.name, new Account(a.name, a.limits, a.jetstream, a.name === systemName));
    if (systemName !== null && !this.byName.has(systemName)) {
      this.byName.set(systemName, new Account(systemName, undefined, null, true));
    }
    this.system = systemName === null ? null : this.byName.get(systemName)!;
    // Mappings (checked when the config was read): the top-level ones are $G's, as in nats-server.
    this.global.mappings = AccountMappings.compile(options.mappings);
    for (const a of options.accounts) {
      const account = this.byName.get(a.name)!;
      if (a.mappings !== undefined && a.mappings.length > 0) account.mappings = AccountMappings.compile(a.mappings);
      account.trace = a.msgTrace ?? null;
    }
  }

  get(name: string): Account | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<Account> {
    return this.byName.values();
  }

  get size(): number {
    return this.byName.size;
  }

  /** Whether any account besides $G and the system account exists (then routes and leaf links carry account names). */
  get configured(): boolean {
    return this.byName.size > (this.system !== null && this.system !== this.global ? 2 : 1);
  }
}
