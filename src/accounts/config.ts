// The `accounts` block, `system_account` and `no_system_account` of a config file, into Options.accounts
// (shapes in ./options.ts). Keys, aliases and error texts follow nats-server's opts.go (parseAccounts,
// parseAccountLimits, parseJetStreamForAccount, parseAccountExports/Imports, parseExportStreamOrService,
// parseImportStreamOrService) and, for the checks made once every account is known, accounts.go
// (addStreamImportWithClaim, addMappedStreamImportWithClaim, addServiceImportWithClaim, the cycle checks).
//
// Two passes, as nats-server: applyAccountsKey reads the keys where they are; checkAccountsConfig then
// checks what spans keys (users against the authorization block, imports against the exports of other
// accounts, system_account against the accounts), pointing at the key each error is about.
import type { Options } from "../options.ts";
import { parseGoDuration } from "../config/duration.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";
import { parsePermissions, parseUsers } from "../auth/config.ts";
import { isValidPublishSubject, isValidSubscribeSubject, subjectIsLiteral } from "../subjects/subject.ts";
import {
  DEFAULT_SYSTEM_ACCOUNT,
  GLOBAL_ACCOUNT,
  NO_ACCOUNT_LIMITS,
  unlimitedJetStream,
  type AccountJetStreamOptions,
  type AccountLimitOptions,
  type AccountOptions,
  type ExportOptions,
  type ImportOptions,
  type MappingOptions,
  type AccountTraceOptions,
} from "./options.ts";
import { AccountMappings } from "./mappings.ts";
import { TransformError } from "./subject-transform.ts";
import { isValidPublicAccountKey } from "../auth/nkeys.ts";

type At = ConfEntry | ConfNode;

function fail(at: At, reason: string): never {
  throw new ConfigError(reason, at.pos);
}

/** Go's %T of a config value, as nats-server's messages print it. */
function goType(n: ConfNode): string {
  switch (n.kind) {
    case "string":
      return "string";
    case "integer":
      return "int64";
    case "float":
      return "float64";
    case "bool":
      return "bool";
    case "datetime":
      return "time.Time";
    case "array":
      return "[]interface {}";
    case "map":
      return "map[string]interface {}";
  }
}

/** Go's %v of a config value (maps and arrays as Go prints them, roughly). */
function goValue(n: ConfNode): string {
  switch (n.kind) {
    case "array":
      return `[${n.value.map(goValue).join(" ")}]`;
    case "map":
      return `map[${[...n.value.values()].map((e) => `${e.key}:${goValue(e.node)}`).join(" ")}]`;
    case "datetime":
      return n.value.toISOString();
    default:
      return String(n.value);
  }
}

function str(e: ConfEntry): string {
  if (e.node.kind !== "string") fail(e, `${e.key} must be a string, got ${goType(e.node)}`);
  return e.node.value;
}

function int(e: ConfEntry): number {
  if (e.node.kind !== "integer") fail(e, `${e.key} must be an integer, got ${goType(e.node)}`);
  return e.node.value;
}

function unknown(e: ConfEntry, text = `unknown field "${e.key}"`): void {
  if (!e.usedAsVariable) fail(e, text);
}

/** nats-server's isReservedAccount: only the global account's name ($SYS may be configured, with users). */
export function isReservedAccount(name: string): boolean {
  return name === GLOBAL_ACCOUNT;
}

/** Where things were written, for the errors of the second pass. */
export class AccountsConfigContext {
  /** The `accounts` key. */
  accountsAt: At | null = null;
  /** The `system_account` key. */
  systemAt: At | null = null;
  /** Each account's `users` key. */
  readonly usersAt = new Map<AccountOptions, At>();
  /** Each account's entry (its name). */
  readonly accountAt = new Map<AccountOptions, At>();
  readonly importAt = new Map<ImportOptions, At>();
  readonly exportAt = new Map<ExportOptions, At>();
}

/** Applies `accounts`, `system_account`/`system` or `no_system_account`/`no_system`/`no_sys_acc`; false when `e` is none of them. */
export function applyAccountsKey(e: ConfEntry, o: Options, ctx: AccountsConfigContext, guard: (fn: () => void) => void): boolean {
  switch (e.key.toLowerCase()) {
    case "accounts":
      ctx.accountsAt = e;
      o.accounts = parseAccounts(e, ctx, guard);
      return true;
    case "system_account":
    case "system":
      if (e.node.kind !== "string") fail(e, "system account name must be a string");
      o.systemAccount = e.node.value;
      ctx.systemAt = e;
      return true;
    case "no_system_account":
    case "no_system":
    case "no_sys_acc":
      if (e.node.kind !== "bool") fail(e, `${e.key} must be a boolean, got ${goType(e.node)}`);
      o.noSystemAccount = e.node.value;
      return true;
  }
  return false;
}

function newAccount(name: string): AccountOptions {
  return { name, users: [], exports: [], imports: [], limits: { ...NO_ACCOUNT_LIMITS }, jetstream: null };
}

function parseAccounts(e: ConfEntry, ctx: AccountsConfigContext, guard: (fn: () => void) => void): AccountOptions[] {
  const accounts: AccountOptions[] = [];
  const n = e.node;
  if (n.kind === "array") {
    // The simple form: `accounts: [A, B]`, names only.
    const seen = new Set<string>();
    for (const item of n.value) {
      guard(() => {
        if (item.kind !== "string") fail(item, `Expected account name to be a string, got ${goType(item)}`);
        const name = item.value;
        if (isReservedAccount(name)) fail(item, `${JSON.stringify(name)} is a Reserved Account`);
        if (seen.has(name)) fail(item, `Duplicate Account Entry: ${name}`);
        seen.add(name);
        const a = newAccount(name);
        ctx.accountAt.set(a, item);
        accounts.push(a);
      });
    }
    return accounts;
  }
  if (n.kind !== "map") fail(e, `Expected accounts to be a map or an array of names, got ${goType(n)}`);
  for (const entry of n.value.values()) {
    if (entry.usedAsVariable) continue; // a $variable defined inside the block, not an account
    guard(() => {
      if (entry.node.kind !== "map") fail(entry, "Expected map entries for accounts");
      if (isReservedAccount(entry.key)) fail(entry, `${JSON.stringify(entry.key)} is a Reserved Account`);
      const a = newAccount(entry.key);
      ctx.accountAt.set(a, entry);
      accounts.push(a);
      for (const k of entry.node.value.values()) guard(() => parseAccountKey(k, a, ctx, guard));
      // nats-server's applyDefaultPermissions: users without permissions of their own get the account's.
      if (a.defaultPermissions) for (const u of a.users) if (!u.permissions) u.permissions = a.defaultPermissions;
    });
  }
  return accounts;
}

function parseAccountKey(k: ConfEntry, a: AccountOptions, ctx: AccountsConfigContext, guard: (fn: () => void) => void): void {
  switch (k.key.toLowerCase()) {
    case "nkey": {
      const v = k.node.kind === "string" ? k.node.value : goValue(k.node);
      if (k.node.kind !== "string" || !isValidPublicAccountKey(v)) fail(k, `Not a valid public nkey for an account: ${JSON.stringify(v)}`);
      a.nkey = v;
      return;
    }
    case "users":
      ctx.usersAt.set(a, k);
      a.users = parseUsers(k);
      return;
    case "default_permissions":
      a.defaultPermissions = parsePermissions(k);
      return;
    case "limits":
      a.limits = parseLimits(k);
      return;
    case "jetstream":
      a.jetstream = parseJetStream(k);
      return;
    case "exports":
      if (k.node.kind !== "array") fail(k, `Exports should be an array, got ${goType(k.node)}`);
      for (const item of k.node.value) {
        guard(() => {
          const x = parseExport(item, guard);
          if (x === null) return;
          ctx.exportAt.set(x, item);
          a.exports.push(x);
        });
      }
      return;
    case "imports": {
      if (k.node.kind !== "array") fail(k, `Imports should be an array, got ${goType(k.node)}`);
      for (const item of k.node.value) {
        guard(() => {
          const x = parseImport(item, guard);
          if (x === null) return;
          if (x.kind === "service") {
            const to = x.to ?? x.subject;
            const dup = a.imports.find((d) => d.kind === "service" && (d.to ?? d.subject) === to && d.account === x.account);
            if (dup) {
              fail(item, `Duplicate service import subject ${JSON.stringify(to)}, previously used in import for account ${JSON.stringify(dup.account)}, subject ${JSON.stringify(dup.subject)}`);
            }
          }
          ctx.importAt.set(x, item);
          a.imports.push(x);
        });
      }
      return;
    }
    case "mappings":
    case "maps":
      a.mappings = parseMappings(k);
      return;
    case "msg_trace":
    case "trace_dest":
      a.msgTrace = parseMsgTrace(k);
      return;
  }
  unknown(k);
}

/**
 * `msg_trace: "<dest>"` or `msg_trace { dest, sampling }` (`trace_dest` the same), nats-server's
 * parseAccountMsgTrace: where a sampled W3C `traceparent` is traced to (src/trace). Sampling is 1..100 or
 * "NN%", 100 when not given; a sampling without a destination traces nothing (nats-server warns).
 */
function parseMsgTrace(e: ConfEntry): AccountTraceOptions | undefined {
  let dest = "";
  let sampling = 0;
  const destination = (k: ConfEntry, name: string) => {
    if (k.node.kind !== "string") fail(k, `Field ${JSON.stringify(name)} should be a string, got ${goType(k.node)}`);
    if (!isValidPublishSubject(k.node.value)) fail(k, `Trace destination ${JSON.stringify(k.node.value)} is not valid`);
    dest = k.node.value;
  };
  const percent = (k: ConfEntry, n: number) => {
    if (n <= 0 || n > 100) fail(k, `Ttrace destination sampling value ${n} is invalid, needs to be [1..100]`);
    sampling = n;
  };
  if (e.node.kind === "string") destination(e, e.key);
  else if (e.node.kind === "map") {
    for (const k of e.node.value.values()) {
      switch (k.key.toLowerCase()) {
        case "dest":
          destination(k, k.key);
          break;
        case "sampling":
          if (k.node.kind === "integer") percent(k, k.node.value);
          else if (k.node.kind === "string") {
            const text = k.node.value.replace(/%$/, "");
            if (!/^[+-]?\d+$/.test(text)) fail(k, `Invalid trace destination sampling value ${JSON.stringify(k.node.value)}`);
            percent(k, Number(text));
          } else fail(k, `Trace destination sampling field ${JSON.stringify(k.key)} should be an integer or a percentage, got ${goType(k.node)}`);
          break;
        default:
          unknown(k, `Unknown field ${JSON.stringify(k.key)} parsing account message trace map/struct ${JSON.stringify(e.key)}`);
      }
    }
  } else fail(e, `Expected account message trace ${JSON.stringify(e.key)} to be a string or a map/struct, got ${goType(e.node)}`);
  if (dest === "") return undefined;
  return { dest, sampling: sampling === 0 ? 100 : sampling };
}

/** `limits { max_connections, max_subscriptions, max_payload, max_leafnodes }` (nats-server's parseAccountLimits). */
function parseLimits(e: ConfEntry): AccountLimitOptions {
  if (e.node.kind !== "map") fail(e, `Expected account limits to be a map/struct, got ${goValue(e.node)}`);
  const l: AccountLimitOptions = { ...NO_ACCOUNT_LIMITS };
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "max_connections":
      case "max_conn":
        l.maxConnections = int(k);
        break;
      case "max_subscriptions":
      case "max_subs":
        l.maxSubscriptions = int(k);
        break;
      case "max_payload":
      case "max_pay":
        l.maxPayload = int(k);
        break;
      case "max_leafnodes":
      case "max_leafs":
        l.maxLeafnodes = int(k);
        break;
      default:
        unknown(k, `Unknown field ${JSON.stringify(k.key)} parsing account limits`);
    }
  }
  return l;
}

/** nats-server's parseJetStreamForAccount: true/false, "enabled"/"disabled", or a map of limits (-1 = unlimited). */
function parseJetStream(e: ConfEntry): AccountJetStreamOptions | null {
  const n = e.node;
  if (n.kind === "bool") return n.value ? unlimitedJetStream() : null;
  if (n.kind === "string") {
    switch (n.value.toLowerCase()) {
      case "enabled":
      case "enable":
        return unlimitedJetStream();
      case "disabled":
      case "disable":
        return null;
    }
    fail(e, `Expected 'enabled' or 'disabled' for string value, got '${n.value}'`);
  }
  if (n.kind !== "map") fail(e, `Expected map, bool or string to define JetStream, got ${goType(n)}`);
  const js = unlimitedJetStream();
  for (const k of n.value.values()) {
    const size = () => {
      if (k.node.kind !== "integer") fail(k, `Expected a parseable size for ${JSON.stringify(k.key)}, got ${goValue(k.node)}`);
      return k.node.value;
    };
    switch (k.key.toLowerCase()) {
      case "max_memory":
      case "max_mem":
      case "mem":
      case "memory":
        js.maxMemory = size();
        break;
      case "max_store":
      case "max_file":
      case "max_disk":
      case "store":
      case "disk":
        js.maxFile = size();
        break;
      case "max_streams":
      case "streams":
        js.maxStreams = size();
        break;
      case "max_consumers":
      case "consumers":
        js.maxConsumers = size();
        break;
      case "max_bytes_required":
      case "max_stream_bytes":
      case "max_bytes":
        if (k.node.kind !== "bool") fail(k, `Expected a parseable bool for ${JSON.stringify(k.key)}, got ${goValue(k.node)}`);
        js.maxBytesRequired = k.node.value;
        break;
      case "mem_max_stream_bytes":
      case "memory_max_stream_bytes":
        js.memoryMaxStreamBytes = size();
        break;
      case "disk_max_stream_bytes":
      case "store_max_stream_bytes":
        js.storeMaxStreamBytes = size();
        break;
      case "max_ack_pending":
        js.maxAckPending = size();
        break;
      case "cluster_traffic":
        fail(k, `"jetstream.${k.key}" of an account is not supported yet`);
        break;
      default:
        unknown(k);
    }
  }
  return js;
}

/**
 * `{stream: "a.>", accounts: [B]}` or `{service: "help", response_type: stream, response_threshold: "5s",
 * accounts: [B]}`; null for an entry with neither stream nor service (nats-server ignores it too).
 */
function parseExport(item: ConfNode, guard: (fn: () => void) => void): ExportOptions | null {
  if (item.kind !== "map") fail(item, `Export Items should be a map with type entry, got ${goType(item)}`);
  let kind: "stream" | "service" | null = null;
  let subject = "";
  let accounts: string[] | null = null;
  let responseType: ExportOptions["responseType"] | undefined;
  let responseAt: ConfEntry | null = null;
  let thresholdMs: number | undefined;
  let thresholdAt: ConfEntry | null = null;
  let allowTrace: boolean | undefined;
  let allowTraceAt: ConfEntry | null = null;
  for (const k of item.value.values()) {
    guard(() => {
      switch (k.key.toLowerCase()) {
        case "stream":
          if (kind === "service") fail(k, `Detected stream ${JSON.stringify(goValue(k.node))} but already saw a service`);
          if (responseAt !== null) fail(responseAt, "Detected response directive on non-service");
          if (thresholdAt !== null) fail(thresholdAt, "Detected response directive on non-service");
          if (allowTraceAt !== null) fail(allowTraceAt, "Detected allow_trace directive on non-service");
          if (k.node.kind !== "string") fail(k, `Expected stream name to be string, got ${goType(k.node)}`);
          kind = "stream";
          subject = k.node.value;
          return;
        case "service":
          if (kind === "stream") fail(k, `Detected service ${JSON.stringify(goValue(k.node))} but already saw a stream`);
          if (k.node.kind !== "string") fail(k, `Expected service name to be string, got ${goType(k.node)}`);
          kind = "service";
          subject = k.node.value;
          return;
        case "response":
        case "response_type": {
          if (responseAt !== null) fail(k, "Duplicate response type definition");
          responseAt = k;
          if (k.node.kind !== "string") fail(k, `Expected response type to be string, got ${goType(k.node)}`);
          const v = k.node.value.toLowerCase();
          if (v === "single" || v === "singleton") responseType = "singleton";
          else if (v === "stream") responseType = "stream";
          else if (v === "chunk" || v === "chunked") responseType = "chunked";
          else fail(k, `Unknown response type: ${JSON.stringify(k.node.value)}`);
          if (kind === "stream") fail(k, "Detected response directive on non-service");
          return;
        }
        case "threshold":
        case "response_threshold":
        case "response_max_time":
        case "response_time":
          if (thresholdAt !== null) fail(k, "Duplicate response threshold detected");
          thresholdAt = k;
          if (k.node.kind !== "string") fail(k, `Expected response threshold to be a parseable time duration, got ${goType(k.node)}`);
          try {
            thresholdMs = parseGoDuration(k.node.value);
          } catch {
            fail(k, `Expected response threshold to be a parseable time duration, got ${JSON.stringify(k.node.value)}`);
          }
          if (kind === "stream") fail(k, "Detected response directive on non-service");
          return;
        case "accounts":
          if (k.node.kind !== "array") fail(k, `Expected accounts to be an array of names, got ${goType(k.node)}`);
          accounts = k.node.value.map((a) => {
            if (a.kind !== "string") fail(a, `Expected an account name, got ${goType(a)}`);
            return a.value;
          });
          return;
        case "allow_trace":
          if (k.node.kind !== "bool") fail(k, `${k.key} must be a boolean, got ${goType(k.node)}`);
          allowTraceAt = k;
          allowTrace = k.node.value;
          if (kind === "stream") fail(k, "Detected allow_trace directive on non-service");
          return;
        case "latency":
        case "account_token_position":
          fail(k, `"exports.${k.key}" is not supported yet`);
      }
      unknown(k);
    });
  }
  if (kind === null) return null;
  const x: ExportOptions = { kind, subject, accounts };
  if (kind === "service") {
    if (responseType !== undefined) x.responseType = responseType;
    if (thresholdMs !== undefined && thresholdMs !== 0) x.responseThresholdMs = thresholdMs;
    if (allowTrace) x.allowTrace = true;
  }
  return x;
}

/** nats-server's parseAccount: `{ account: A, subject: "x" }`. */
function parseImportSource(e: ConfEntry, what: "Stream" | "Service"): { account: string; subject: string } {
  if (e.node.kind !== "map") fail(e, `${what} entry should be an account map, got ${goType(e.node)}`);
  let account = "";
  let subject = "";
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "account":
        account = str(k);
        break;
      case "subject":
        subject = str(k);
        break;
      default:
        unknown(k);
    }
  }
  if (account === "" || subject === "") fail(e, "Expect an account name and a subject");
  return { account, subject };
}

/**
 * `{stream: {account: A, subject: "a.>"}, prefix: p | to: "x.>"}` or `{service: {account: A, subject: "help"},
 * to: "help.local"}`; null for an entry with neither (nats-server ignores it too).
 */
function parseImport(item: ConfNode, guard: (fn: () => void) => void): ImportOptions | null {
  if (item.kind !== "map") fail(item, `Import Items should be a map with type entry, got ${goType(item)}`);
  let x: ImportOptions | null = null;
  let prefix: string | undefined;
  let to: string | undefined;
  let toAt: ConfEntry | null = null;
  let allowTrace: boolean | undefined;
  let allowTraceAt: ConfEntry | null = null;
  for (const k of item.value.values()) {
    guard(() => {
      switch (k.key.toLowerCase()) {
        case "stream":
          if (x?.kind === "service") fail(k, "Detected stream but already saw a service");
          x = { kind: "stream", ...parseImportSource(k, "Stream") };
          return;
        case "service":
          if (x?.kind === "stream") fail(k, "Detected service but already saw a stream");
          if (allowTraceAt !== null) fail(allowTraceAt, "Detected allow_trace directive on a non-stream");
          x = { kind: "service", ...parseImportSource(k, "Service") };
          return;
        case "prefix":
          prefix = str(k);
          return;
        case "to":
          to = str(k);
          toAt = k;
          return;
        case "share": // service latency sharing: meaningless without latency tracking (not supported)
          if (k.node.kind !== "bool") fail(k, `${k.key} must be a boolean, got ${goType(k.node)}`);
          return;
        case "allow_trace":
          if ((x as ImportOptions | null)?.kind === "service") fail(k, "Detected allow_trace directive on a non-stream");
          if (k.node.kind !== "bool") fail(k, `${k.key} must be a boolean, got ${goType(k.node)}`);
          allowTraceAt = k;
          allowTrace = k.node.value;
          return;
      }
      unknown(k);
    });
  }
  const found = x as ImportOptions | null;
  if (found === null) return null;
  if (found.kind === "stream") {
    if (prefix !== undefined && prefix !== "" && to !== undefined && to !== "") fail(toAt!, "Stream import can not have a 'prefix' and a 'to' property");
    if (prefix) found.prefix = prefix;
    if (to) found.to = to;
    if (allowTrace) found.allowTrace = true;
  } else if (to) {
    found.to = to;
  }
  return found;
}

// ---- the second pass -------------------------------------------------------------------------

/** nats-server's isSubsetMatch: every subject `subject` matches is matched by `pattern` too. */
function isSubsetMatch(subject: string, pattern: string): boolean {
  const tokens = subject.split(".");
  const test = pattern.split(".");
  for (let i = 0; i < test.length; i++) {
    if (i >= tokens.length) return false;
    const t2 = test[i]!;
    if (t2 === "") return false;
    if (t2 === ">") return true;
    const t1 = tokens[i]!;
    if (t1 === "" || t1 === ">") return false;
    if (t1 === "*") {
      if (t2 !== "*") return false;
      continue;
    }
    if (t2 !== "*" && t1 !== t2) return false;
  }
  return tokens.length === test.length;
}

/** nats-server's SubjectsCollide: some subject matches both. */
function subjectsCollide(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = a.split(".");
  const tb = b.split(".");
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (x === ">" || y === ">") return true;
    if (x !== "*" && y !== "*" && x !== y) return false;
  }
  return ta.length === tb.length;
}

/** Does `exporter` let `importer` import `subject` (nats-server's checkStreamExportApproved / checkServiceExportApproved)? */
function exportApproves(exporter: AccountOptions, kind: "stream" | "service", importer: string, subject: string): boolean {
  if (!isValidSubscribeSubject(subject)) return false;
  const exports = exporter.exports.filter((x) => x.kind === kind);
  const approves = (x: ExportOptions) => x.accounts == null || x.accounts.includes(importer);
  const exact = exports.filter((x) => x.subject === subject);
  if (exact.length > 0) return exact.some(approves);
  return exports.some((x) => isSubsetMatch(subject, x.subject) && approves(x));
}

/** Where an import's messages appear in the importing account. */
function importTo(x: ImportOptions): string {
  if (x.kind === "stream" && x.prefix) return `${x.prefix.endsWith(".") ? x.prefix : `${x.prefix}.`}${x.subject}`;
  return x.to ?? x.subject;
}

/**
 * The checks that need every account and the authorization block: nats-server's second half of
 * parseAccounts, its duplicate-user checks, and configureAccounts' system account lookup.
 */
export function checkAccountsConfig(o: Options, ctx: AccountsConfigContext): ConfigError[] {
  const errors: ConfigError[] = [];
  const err = (at: At | null, reason: string) => errors.push(new ConfigError(reason, at?.pos ?? null));
  const byName = new Map(o.accounts.map((a) => [a.name, a]));
  const auth = o.authorization;

  // Users: unique across accounts and the authorization block; no single user or token beside them.
  const seen = new Set<string>();
  for (const u of auth?.users ?? []) seen.add(u.nkey ?? u.user!);
  for (const a of o.accounts) {
    if (a.users.length === 0) continue;
    const at = ctx.usersAt.get(a) ?? ctx.accountAt.get(a) ?? null;
    if (auth?.user) {
      err(at, "Can not have a single user/pass and accounts");
      continue;
    }
    if (auth?.token) {
      err(at, "Can not have a token and accounts");
      continue;
    }
    for (const u of a.users) {
      const id = u.nkey ?? u.user!;
      if (seen.has(id)) err(at, `Duplicate ${u.nkey ? "nkey" : "user"} ${JSON.stringify(id)} detected`);
      seen.add(id);
    }
  }

  if (o.systemAccount && o.systemAccount !== DEFAULT_SYSTEM_ACCOUNT && !byName.has(o.systemAccount) && !o.noSystemAccount) {
    err(ctx.systemAt, "error resolving system account: account missing");
  }
  if (errors.length > 0) return errors; // nats-server bails before imports and exports too

  for (const a of o.accounts) {
    for (const x of a.exports) {
      const at = ctx.exportAt.get(x) ?? ctx.accountAt.get(a) ?? null;
      for (const name of x.accounts ?? []) {
        if (!byName.has(name)) err(at, `${JSON.stringify(name)} account not defined for ${x.kind} export`);
      }
      if (!isValidSubscribeSubject(x.subject)) err(at, `Error adding ${x.kind} export ${JSON.stringify(x.subject)}: invalid subject`);
    }
  }
  // Imports in order, each checked against those added before it, as nats-server adds them.
  const added = new Map<string, ImportOptions[]>();
  const importsOf = (name: string) => added.get(name) ?? [];
  // A cycle: following the imports of the exporting account (whose local subject collides with what is
  // imported) leads back to the importing one (nats-server's streamImportFormsCycle/serviceImportFormsCycle).
  const formsCycle = (kind: "stream" | "service", exporter: string, subject: string, visited: Set<string>): boolean => {
    for (const si of importsOf(exporter)) {
      if (si.kind !== kind || !subjectsCollide(subject, importTo(si))) continue;
      if (visited.has(si.account)) return true;
      visited.add(exporter);
      if (visited.size < 1024 && formsCycle(kind, si.account, si.subject, visited)) return true;
    }
    return false;
  };
  for (const a of o.accounts) {
    for (const x of a.imports) {
      const at = ctx.importAt.get(x) ?? ctx.accountAt.get(a) ?? null;
      const exporter = byName.get(x.account);
      if (exporter === undefined) {
        err(at, `${JSON.stringify(x.account)} account not defined for ${x.kind} import`);
        continue;
      }
      const what = `Error adding ${x.kind} import ${JSON.stringify(x.subject)}`;
      if (x.kind === "stream") {
        if (!exportApproves(exporter, "stream", a.name, x.subject)) {
          err(at, `${what}: stream import not authorized`);
          continue;
        }
        if (x.prefix !== undefined && !subjectIsLiteral(x.prefix)) {
          err(at, `${what}: stream import prefix can not contain wildcard tokens`);
          continue;
        }
        const to = importTo(x);
        if (!isValidSubscribeSubject(to)) {
          err(at, `${what}: invalid subject`);
          continue;
        }
        if (formsCycle("stream", x.account, x.subject, new Set([a.name]))) {
          err(at, `${what}: import forms a cycle`);
          continue;
        }
        if (importsOf(a.name).some((d) => d.kind === "stream" && d.account === x.account && d.subject === x.subject)) {
          err(at, `${what}: stream import already exists`);
          continue;
        }
      } else {
        const to = importTo(x);
        if (!isValidSubscribeSubject(x.subject) || !isValidSubscribeSubject(to)) {
          err(at, `${what}: sublist: invalid subject`);
          continue;
        }
        if (!exportApproves(exporter, "service", a.name, x.subject)) {
          err(at, `${what}: service import not authorized`);
          continue;
        }
        if (formsCycle("service", x.account, x.subject, new Set([a.name]))) {
          err(at, `${what}: import forms a cycle`);
          continue;
        }
      }
      added.set(a.name, [...importsOf(a.name), x]);
    }
  }
  return errors;
}

// ---- mappings --------------------------------------------------------------------------------

/**
 * `mappings { "src": "dest", "src2": [ { destination: "a", weight: 40% }, … ], "src3": { destination, weight } }`
 * (top level: the global account's; in an account: its own), with nats-server's parseAccountMappings and
 * AddWeightedMappings checks and messages. Each mapping is compiled here so a bad one fails at load.
 */
export function parseMappings(e: ConfEntry): MappingOptions[] {
  if (e.node.kind !== "map") fail(e, `Expected mappings to be a map, got ${goType(e.node)}`);
  const out: MappingOptions[] = [];
  for (const m of e.node.value.values()) {
    const source = m.key;
    if (!isValidSubscribeSubject(source)) fail(m, `Subject ${JSON.stringify(source)} is not a valid subject`);
    const n = m.node;
    let mapping: MappingOptions;
    if (n.kind === "string") {
      mapping = { source, destinations: [{ subject: n.value, weight: 100 }] };
      checkMapping(m, mapping, `Error adding mapping for ${JSON.stringify(source)} to ${JSON.stringify(n.value)}`);
    } else if (n.kind === "array" || n.kind === "map") {
      const items = n.kind === "array" ? n.value : [n];
      mapping = { source, destinations: items.map((item) => mapDestination(item)) };
      checkMapping(m, mapping, `Error adding mapping for ${JSON.stringify(source)}`);
    } else fail(m, `Unknown type ${goType(n)} for mapping destination`);
    out.push(mapping);
  }
  return out;
}

/** One weighted destination (nats-server's parseAccountMapDest). */
function mapDestination(item: ConfNode): { subject: string; weight: number } {
  if (item.kind !== "map") fail(item, "Expected an entry for the mapping destination");
  let subject = "";
  let weight: number | null = null;
  for (const k of item.value.values()) {
    switch (k.key.toLowerCase()) {
      case "dest":
      case "destination":
        subject = str(k);
        break;
      case "weight": {
        let w: number;
        if (k.node.kind === "string") {
          const text = k.node.value.replace(/%$/, "");
          if (!/^[+-]?\d+$/.test(text)) fail(k, `Invalid weight ${JSON.stringify(text)} for mapping destination`);
          w = Number(text);
        } else if (k.node.kind === "integer") w = k.node.value;
        else fail(k, `Unknown entry type for weight of ${goValue(k.node)}`);
        if (w > 100 || w < 0) fail(k, `Invalid weight ${w} for mapping destination`);
        weight = w;
        break;
      }
      case "cluster":
        fail(k, `"mappings.${k.key}" is not supported yet (cluster-scoped mappings)`);
        break;
      default:
        fail(k, `Unknown field ${JSON.stringify(k.key)} for mapping destination`);
    }
  }
  if (weight === null) fail(item, `Missing weight for mapping destination ${JSON.stringify(subject)}`);
  return { subject, weight };
}

/** nats-server's AddWeightedMappings checks, then the transforms themselves. */
function checkMapping(at: ConfEntry, m: MappingOptions, what: string): void {
  const seen = new Set<string>();
  let total = 0;
  for (const d of m.destinations) {
    if (seen.has(d.subject)) fail(at, `${what} : duplicate entry for ${JSON.stringify(d.subject)}`);
    seen.add(d.subject);
    total += d.weight;
    if (total > 100) fail(at, `${what} : total weight needs to be <= 100`);
  }
  try {
    AccountMappings.compile([m]);
  } catch (error) {
    if (error instanceof TransformError) fail(at, `${what} : ${error.message}`);
    throw error;
  }
}
