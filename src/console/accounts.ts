// The Accounts page's data: each account's users (names only: never a password or anything else a
// user authenticates with), their publish/subscribe permissions, limits, usage, imports and exports;
// and the "may user U publish to / subscribe to S?" checker, answered by the permission code the
// server itself runs (src/auth/permissions.ts), so the answer is the server's, not a re-implementation.
import type { Server } from "../server.ts";
import type { PermissionOptions, UserOptions } from "../auth/options.ts";
import { ClientPermissions, CompiledPermissions } from "../auth/permissions.ts";
import { GLOBAL_ACCOUNT } from "../accounts/options.ts";
import { isValidPublishSubject, isValidSubscribeSubject } from "../subjects/subject.ts";

export interface ConsoleUserView {
  /** The user name, or an nkey user's public key (public by definition). */
  name: string;
  account: string;
  permissions: PermissionOptions | null;
}

interface Located {
  view: ConsoleUserView;
  options: UserOptions;
}

/** Every configured user with its account: the authorization block's (in $G) and the accounts block's. */
function configuredUsers(server: Server): Located[] {
  const o = server.options;
  const out: Located[] = [];
  const add = (u: UserOptions, account: string) => {
    const name = u.user ?? u.nkey;
    if (name === undefined) return;
    out.push({ view: { name, account, permissions: u.permissions ?? null }, options: u });
  };
  for (const u of o.authorization?.users ?? []) add(u, GLOBAL_ACCOUNT);
  if (o.authorization?.user) add({ user: o.authorization.user }, GLOBAL_ACCOUNT);
  for (const a of o.accounts) for (const u of a.users) add(u, a.name);
  return out;
}

export function accountsView(server: Server): Record<string, unknown>[] {
  const users = configuredUsers(server);
  return [...server.accounts.all()].map((account) => {
    const options = server.options.accounts.find((a) => a.name === account.name);
    return {
      name: account.name,
      is_system: server.accounts.system === account || undefined,
      connections: account.connections,
      subscriptions: account.sublist.count,
      limits: options?.limits ?? null,
      jetstream: options ? options.jetstream !== null : server.options.jetstream && account.name === GLOBAL_ACCOUNT,
      exports: options?.exports ?? [],
      imports: options?.imports ?? [],
      users: users.filter((u) => u.view.account === account.name).map((u) => u.view),
    };
  });
}

export interface PermissionAnswer {
  allowed: boolean;
  why: string;
}

/** May `userName` publish (op "pub") or subscribe (op "sub", optionally in `queue`) to `subject`? */
export function checkPermission(server: Server, userName: string, op: "pub" | "sub", subject: string, queue: string | null): PermissionAnswer | null {
  const found = configuredUsers(server).find((u) => u.view.name === userName);
  if (found === undefined) return null;
  if (op === "pub" ? !isValidPublishSubject(subject) : !isValidSubscribeSubject(subject)) {
    return { allowed: false, why: `${JSON.stringify(subject)} is not a valid subject to ${op === "pub" ? "publish" : "subscribe"} to` };
  }
  const p = found.options.permissions;
  if (!p) return { allowed: true, why: "this user has no permissions set: everything is allowed" };
  const compiled = new CompiledPermissions(p);
  if (op === "pub") {
    const allowed = compiled.publishListed(subject);
    const why = allowed
      ? compiled.pubAllow !== null ? "a publish allow entry matches and no deny entry does" : "no publish allow list, and no deny entry matches"
      : compiled.pubAllow !== null && !compiled.pubAllow.matchesPlain(subject.split(".")) ? "no publish allow entry matches" : "a publish deny entry matches";
    return { allowed, why: compiled.responses !== null ? `${why} (allow_responses may still let it answer a request it received)` : why };
  }
  const allowed = new ClientPermissions(compiled).canSubscribe(subject, queue);
  const why = allowed
    ? compiled.subAllow !== null ? "a subscribe allow entry matches and no deny entry does" : "no subscribe allow list, and no deny entry matches"
    : compiled.subAllow !== null && !compiled.subAllow.matchesPlain(subject.split(".")) ? "no subscribe allow entry matches" : "a subscribe deny entry matches";
  return { allowed, why };
}
