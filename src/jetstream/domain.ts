// JetStream domains (nats-server's `jetstream { domain: X }`, jetstream_api.go generateJSMappingTable and
// leafnode.go addLeafNodeConnection). A domain names one JetStream among servers joined by leaf links: the
// API answers on `$JS.API.>` as always, and also on `$JS.X.API.>` through account subject mappings
// (`$JS.X.API.STREAM.>` → `$JS.API.STREAM.>`, `$JS.X.API.$KV.>` → `$KV.>`, …). Leaf links never carry the
// plain `$JS.API.>`, `$KV.>`, `$OBJ.>` (src/leaf/protocol.ts), but they carry `$JS.X.API.>`: each side
// advertises its mapping sources as interest, and maps what arrives over the link as a client's publish is
// mapped. So a client anywhere reaches domain X's API with the prefix `$JS.X.API` (the clients' `domain`).
import type { Account } from "../accounts/account.ts";
import { AccountMappings } from "../accounts/mappings.ts";
import type { MappingOptions } from "../accounts/options.ts";
import { isValidSubscribeSubject } from "../subjects/subject.ts";

/** nats-server's table: each `$JS.<domain>.API.<suffix>` and what it maps to. */
const DOMAIN_MAPPINGS: readonly [string, string][] = [
  ["INFO", "$JS.API.INFO"],
  ["STREAM.>", "$JS.API.STREAM.>"],
  ["CONSUMER.>", "$JS.API.CONSUMER.>"],
  ["DIRECT.>", "$JS.API.DIRECT.>"],
  ["META.>", "$JS.API.META.>"],
  ["SERVER.>", "$JS.API.SERVER.>"],
  ["ACCOUNT.>", "$JS.API.ACCOUNT.>"],
  ["$KV.>", "$KV.>"],
  ["$OBJ.>", "$OBJ.>"],
];

/** The API prefix of a domain, as clients build it (`$JS.<domain>.API`). */
export function domainApiPrefix(domain: string): string {
  return `$JS.${domain}.API`;
}

/** The account mappings a domain adds (nats-server's generateJSMappingTable). */
export function domainMappings(domain: string): MappingOptions[] {
  return DOMAIN_MAPPINGS.map(([suffix, dest]) => ({ source: `${domainApiPrefix(domain)}.${suffix}`, destinations: [{ subject: dest, weight: 100 }] }));
}

/** nats-server's validateOptions checks of a domain name; null when it is fine. */
export function domainNameError(domain: string): string | null {
  const subject = `${domainApiPrefix(domain)}.>`;
  if (!isValidSubscribeSubject(subject)) return `invalid domain name: derived ${JSON.stringify(subject)} is not a valid subject`;
  if (/[.*>]/.test(domain)) return "invalid domain name: may not contain ., * or >";
  return null;
}

/**
 * Gives an account with JetStream its domain mappings (nats-server's enableAllJetStreamServiceImportsAndMappings):
 * a mapping the account's config already has for one of the sources is kept.
 */
export function addDomainMappings(account: Account, domain: string): void {
  const existing = account.mappings?.options ?? [];
  const taken = new Set(existing.map((m) => m.source));
  const added = domainMappings(domain).filter((m) => !taken.has(m.source));
  account.mappings = AccountMappings.compile([...existing, ...added]);
}
