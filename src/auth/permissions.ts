// Per-user publish and subscribe permissions, checked the way nats-server checks them (server/client.go:
// setPermissions, pubAllowedFullCheck, canSubscribe, checkDenySub, deliverMsg's reply tracking).
//
// - A list is a set of subject patterns. A subject is tested against it as nats-server's Sublist.Match
//   tests it: the subject's tokens are taken literally, a pattern's `*` matches any one token and `>` one
//   or more. So allow "foo.*" also admits SUB "foo.>" (the token ">" is "any one token"), exactly as
//   nats-server 2.9/2.10 does.
// - Deny beats allow. No allow list = everything allowed; an empty publish allow list = nothing
//   (what allow_responses sets when no publish allow list is given).
// - Subscribe entries may carry a queue group ("foo v1"): such an entry admits only that queue group.
// - A wildcard subscription that overlaps a subscribe deny is accepted; the denied subjects are then
//   filtered out at delivery (for every subscription of that connection, as nats-server does).
// - allow_responses: every reply subject this connection receives may be published to `max` times
//   within `expires`, even if the publish lists do not allow it.
//
// Cost: a connection without permissions has none of this (Connection.perms is null: one null check
// per PUB and per delivery). With permissions, publish decisions are cached per connection: the last
// subject (a byte compare), then a bounded cache keyed by the subject's bytes (SubjectDecisions: a hash
// and a compare, no string, no allocation on a hit; 128 entries as nats-server's maxPermCacheSize).
// The deny-at-delivery filter has one likewise (256 entries, nats-server's maxDenyPermCacheSize).
import type { PermissionOptions, ResponsePermissionOptions } from "./options.ts";

/** nats-server's limits (server/client.go: maxPermCacheSize, maxDenyPermCacheSize, pruneSize, replyPermLimit). */
const MAX_PERM_CACHE = 128;
const MAX_DENY_CACHE = 256;
const PRUNE_SIZE = 32;
const REPLY_PERM_LIMIT = 4096;
/** A subject longer than this is not kept in the last-subject memo (checked through the map instead). */
const MEMO_BYTES = 128;

interface Pattern {
  readonly tokens: readonly string[];
  /** The queue group this entry is limited to (subscribe lists only), or null. */
  readonly queue: string | null;
}

/** Does `pattern` match the tokens of `subject` (nats-server's Sublist.Match: subject tokens are literal)? */
function tokensMatch(pattern: readonly string[], subject: readonly string[]): boolean {
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const p = pattern[i]!;
    if (p === ">") return subject.length > i; // one or more tokens left
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return subject.length === n;
}

/**
 * nats-server's isSubsetMatchTokenized: is every subject `test` matches also matched by... the other way:
 * does the (possibly wildcard) subject `tokens` fall within `test`? `foo.*` is a subset of `>`, `*.*`, `foo.*`.
 */
function isSubsetMatch(tokens: readonly string[], test: readonly string[]): boolean {
  for (let i = 0; i < test.length; i++) {
    if (i >= tokens.length) return false;
    const t2 = test[i]!;
    if (t2.length === 0) return false;
    if (t2 === ">") return true;
    const t1 = tokens[i]!;
    if (t1.length === 0 || t1 === ">") return false;
    if (t1 === "*") {
      if (t2 !== "*") return false;
      continue;
    }
    if (t2 !== "*" && t1 !== t2) return false;
  }
  return tokens.length === test.length;
}

function hasWildcard(tokens: readonly string[]): boolean {
  for (const t of tokens) if (t === "*" || t === ">") return true;
  return false;
}

/** A compiled allow or deny list. */
export class SubjectList {
  private readonly patterns: Pattern[] = [];

  constructor(entries: readonly string[], withQueues: boolean) {
    for (const entry of entries) {
      // "subject queue" names a queue group in subscribe lists; in publish lists nats-server keeps the
      // whole text as the subject (which then matches nothing).
      const parts = entry.trim().split(/\s+/);
      const subject = withQueues ? parts[0]! : entry;
      const queue = withQueues && parts.length === 2 ? parts[1]! : null;
      this.patterns.push({ tokens: subject.split("."), queue });
    }
  }

  get size(): number {
    return this.patterns.length;
  }

  /** A plain entry (no queue group) matches: nats-server's `len(r.psubs) > 0`. */
  matchesPlain(subject: readonly string[]): boolean {
    for (const p of this.patterns) if (p.queue === null && tokensMatch(p.tokens, subject)) return true;
    return false;
  }

  /**
   * For a queue subscription: null when no queue entry matches the subject, else whether one of the
   * matching queue entries names `queue` (literally, or as a wildcard pattern over the queue name).
   * nats-server's `len(r.qsubs) > 0` / queueMatches.
   */
  queueMatch(subject: readonly string[], queue: string): boolean | null {
    let any = false;
    for (const p of this.patterns) {
      if (p.queue === null || !tokensMatch(p.tokens, subject)) continue;
      any = true;
      if (p.queue === queue) return true;
      const qt = p.queue.split(".");
      if (hasWildcard(qt) && isSubsetMatch(queue.split("."), qt)) return true;
    }
    return any ? false : null;
  }

  /** Plain (no queue) entries that fall within the wildcard subject `subject`. */
  anyPlainWithin(subject: readonly string[]): boolean {
    for (const p of this.patterns) if (p.queue === null && isSubsetMatch(p.tokens, subject)) return true;
    return false;
  }
}

/**
 * A bounded cache of yes/no decisions keyed by subject bytes, so that a hit costs a hash and a compare
 * (FNV-1a over the bytes, then the stored bytes compared) and allocates nothing. Past `max` entries
 * the oldest PRUNE_SIZE go, as nats-server prunes its per-connection permission caches.
 */
export class SubjectDecisions {
  private readonly entries = new Map<number, { bytes: Buffer; decision: number }>();
  private hash = 0;

  constructor(private readonly max: number) {}

  /** 1 or 0 when cached, -1 when not (the hash is kept for set()). */
  get(buf: Buffer, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let k = start; k < end; k++) h = Math.imul(h ^ buf[k]!, 0x01000193);
    this.hash = h;
    const entry = this.entries.get(h);
    if (entry === undefined) return -1;
    const bytes = entry.bytes;
    const length = end - start;
    if (bytes.length !== length) return -1;
    for (let k = 0; k < length; k++) if (bytes[k] !== buf[start + k]) return -1;
    return entry.decision;
  }

  /** Stores the decision for the subject of the last get(). */
  set(buf: Buffer, start: number, end: number, decision: boolean): void {
    const entries = this.entries;
    entries.set(this.hash, { bytes: Buffer.from(buf.subarray(start, end)), decision: decision ? 1 : 0 });
    if (entries.size > this.max) {
      let n = 0;
      for (const key of entries.keys()) {
        entries.delete(key);
        if (++n >= PRUNE_SIZE) break;
      }
    }
  }
}

/** A user's permissions, compiled once and shared by all of that user's connections. */
export class CompiledPermissions {
  readonly pubAllow: SubjectList | null;
  readonly pubDeny: SubjectList | null;
  readonly subAllow: SubjectList | null;
  readonly subDeny: SubjectList | null;
  readonly responses: ResponsePermissionOptions | null;
  /** Publish is restricted at all (else every publish is allowed and nothing is cached). */
  readonly checksPublish: boolean;

  constructor(readonly options: PermissionOptions) {
    const pub = options.publish ?? null;
    const sub = options.subscribe ?? null;
    this.responses = options.responses ?? null;
    // nats-server: a publish allow list that is present (even empty) is a list; allow_responses without
    // one turns the blanket allow off (validateResponsePermissions).
    let pubAllow = pub?.allow ?? null;
    if (this.responses !== null && pubAllow === null) pubAllow = [];
    this.pubAllow = pubAllow !== null ? new SubjectList(pubAllow, false) : null;
    this.pubDeny = pub?.deny && pub.deny.length > 0 ? new SubjectList(pub.deny, false) : null;
    this.subAllow = sub?.allow && sub.allow.length > 0 ? new SubjectList(sub.allow, true) : null;
    this.subDeny = sub?.deny && sub.deny.length > 0 ? new SubjectList(sub.deny, true) : null;
    this.checksPublish = this.pubAllow !== null || this.pubDeny !== null;
  }

  /** The publish lists alone (no reply allowance). */
  publishListed(subject: string): boolean {
    const tokens = subject.split(".");
    let allowed = true;
    if (this.pubAllow !== null) allowed = this.pubAllow.matchesPlain(tokens);
    if (allowed && this.pubDeny !== null) allowed = !this.pubDeny.matchesPlain(tokens);
    return allowed;
  }
}

interface ReplyAllowance {
  /** When the request carrying this reply subject was delivered (ms). */
  at: number;
  /** Replies sent so far. */
  sent: number;
}

/** One connection's view of its user's permissions: the caches and the reply allowances. */
export class ClientPermissions {
  // Last published subject (bytes) and its decision: a publisher repeating its subject costs a byte compare.
  private readonly lastSubject = Buffer.allocUnsafe(MEMO_BYTES);
  private lastLength = -1;
  private lastAllowed = false;
  private readonly pubCache = new SubjectDecisions(MAX_PERM_CACHE);
  /** Set once a wildcard subscription overlaps a subscribe deny: deliveries are then checked. */
  private denyFilter: SubjectDecisions | null = null;
  /** Reply subjects received, for allow_responses; null without it. */
  private readonly replies: Map<string, ReplyAllowance> | null;

  constructor(readonly compiled: CompiledPermissions) {
    this.replies = compiled.responses !== null ? new Map() : null;
  }

  /** May this connection publish to buf[start, end)? Hot path with permissions: memo, then cache. */
  publishAllowed(buf: Buffer, start: number, end: number): boolean {
    const compiled = this.compiled;
    if (!compiled.checksPublish) return true;
    const length = end - start;
    if (length === this.lastLength) {
      const last = this.lastSubject;
      let same = true;
      for (let k = 0; k < length; k++) {
        if (buf[start + k] !== last[k]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastAllowed;
    }
    const cached = this.pubCache.get(buf, start, end);
    let allowed: boolean;
    if (cached >= 0) {
      allowed = cached === 1;
    } else {
      const subject = buf.latin1Slice(start, end);
      allowed = compiled.publishListed(subject);
      if (!allowed && this.replies !== null) {
        // Not cached: the answer depends on the replies received (nats-server does the same).
        this.lastLength = -1;
        return this.replyAllowed(subject);
      }
      this.pubCache.set(buf, start, end, allowed);
    }
    if (length <= MEMO_BYTES) {
      buf.copy(this.lastSubject, 0, start, end);
      this.lastLength = length;
      this.lastAllowed = allowed;
    } else {
      this.lastLength = -1;
    }
    return allowed;
  }

  private replyAllowed(subject: string): boolean {
    const replies = this.replies!;
    const allowance = replies.get(subject);
    if (allowance === undefined) return false;
    const rp = this.compiled.responses!;
    allowance.sent++;
    if (rp.max > 0 && allowance.sent > rp.max) {
      replies.delete(subject);
      return false;
    }
    if (rp.expiresMs > 0 && Date.now() - allowance.at > rp.expiresMs) {
      replies.delete(subject);
      return false;
    }
    return true;
  }

  /** nats-server's canSubscribe (plus: it arms the delivery filter when a wildcard overlaps a deny). */
  canSubscribe(subject: string, queue: string | null): boolean {
    const c = this.compiled;
    const tokens = subject.split(".");
    let allowed = true;
    if (c.subAllow !== null) {
      allowed = c.subAllow.matchesPlain(tokens);
      if (queue !== null) {
        const q = c.subAllow.queueMatch(tokens, queue);
        if (q !== null) allowed = q;
      }
    }
    if (allowed && c.subDeny !== null) {
      allowed = !c.subDeny.matchesPlain(tokens);
      if (queue !== null) {
        const q = c.subDeny.queueMatch(tokens, queue);
        if (q !== null) allowed = !q;
      }
      if (allowed && this.denyFilter === null && hasWildcard(tokens) && c.subDeny.anyPlainWithin(tokens)) {
        this.denyFilter = new SubjectDecisions(MAX_DENY_CACHE);
      }
    }
    return allowed;
  }

  /**
   * Called for every message about to be delivered to this connection: false drops it (a subject the
   * user may not subscribe to, reached through a wider wildcard). Records the reply subject for
   * allow_responses.
   */
  admitDelivery(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number): boolean {
    const filter = this.denyFilter;
    if (filter !== null) {
      let denied = filter.get(buf, subjectStart, subjectEnd);
      if (denied < 0) {
        const deny = this.compiled.subDeny!.matchesPlain(buf.latin1Slice(subjectStart, subjectEnd).split("."));
        filter.set(buf, subjectStart, subjectEnd, deny);
        denied = deny ? 1 : 0;
      }
      if (denied === 1) return false;
    }
    const replies = this.replies;
    if (replies !== null && replyStart >= 0) {
      replies.set(buf.latin1Slice(replyStart, replyEnd), { at: Date.now(), sent: 0 });
      if (replies.size > REPLY_PERM_LIMIT) this.pruneReplies();
    }
    return true;
  }

  /** Drops used-up and expired reply allowances (nats-server's pruneReplyPerms). */
  private pruneReplies(): void {
    const rp = this.compiled.responses!;
    const now = Date.now();
    for (const [subject, a] of this.replies!) {
      if ((rp.max > 0 && a.sent >= rp.max) || (rp.expiresMs > 0 && now - a.at > rp.expiresMs)) this.replies!.delete(subject);
    }
  }
}

/**
 * Reply subjects a client may not use (nats-server's isReservedReply): service-import replies `_R_.`,
 * gateway-routed replies `_GR_.` and JetStream acks `$JS.ACK.` (a forged ack reply would ack for someone
 * else). Checked on the bytes of a PUB that has a reply: one byte compare for an ordinary `_INBOX.` reply.
 */
export function isReservedReply(buf: Buffer, start: number, end: number): boolean {
  const length = end - start;
  const c0 = buf[start];
  if (c0 === 95 /* _ */) {
    if (length > 3 && buf[start + 1] === 82 /* R */ && buf[start + 2] === 95 && buf[start + 3] === 46) return true; // "_R_."
    return length > 5 && buf[start + 1] === 71 /* G */ && buf[start + 2] === 82 && buf[start + 3] === 95 && buf[start + 4] === 46; // "_GR_."
  }
  return c0 === 36 /* $ */ && length > 8 && buf.latin1Slice(start, start + 8) === "$JS.ACK.";
}
