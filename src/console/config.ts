// The config file's `console` block (see src/console/options.ts for its shape):
//   console: true | false            (or enabled/disabled)
//   console { enabled, users: [ { user, password, role: admin | readonly } ] }
// Called from src/config/apply.ts; errors are ConfigErrors at the key's position.
import type { Options } from "../options.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";
import { CONSOLE_ROLES, type ConsoleRole, type ConsoleUser } from "./options.ts";

function fail(at: { pos: ConfEntry["pos"] }, reason: string): never {
  throw new ConfigError(reason, at.pos);
}

function enabled(at: ConfEntry, n: ConfNode): boolean {
  if (n.kind === "bool") return n.value;
  if (n.kind === "string" && ["enabled", "disabled"].includes(n.value.toLowerCase())) return n.value.toLowerCase() === "enabled";
  fail(at, `console: expected true, false, enabled or disabled`);
}

function user(n: ConfNode): ConsoleUser {
  if (n.kind !== "map") fail(n, "console users: each user is a map { user, password, role }");
  const u: Partial<ConsoleUser> = {};
  for (const e of n.value.values()) {
    const key = e.key.toLowerCase();
    if (key === "user" || key === "username" || key === "password" || key === "pass") {
      if (e.node.kind !== "string" && e.node.kind !== "integer") fail(e, `console users: ${e.key} must be a string`);
      const value = e.node.kind === "string" ? e.node.value : e.node.raw;
      if (key.startsWith("user")) u.user = value;
      else u.password = value;
    } else if (key === "role") {
      if (e.node.kind !== "string" || !CONSOLE_ROLES.includes(e.node.value as ConsoleRole)) fail(e, `console users: role must be one of ${CONSOLE_ROLES.join(", ")}`);
      u.role = e.node.value as ConsoleRole;
    } else fail(e, `console users: unknown field "${e.key}"`);
  }
  if (!u.user) fail(n, "console users: a user needs a name (user)");
  if (!u.password) fail(n, `console users: user ${JSON.stringify(u.user)} needs a password`);
  return { user: u.user, password: u.password, role: u.role ?? "readonly" };
}

/** Applies the top-level `console` key; false when `e` is another key. */
export function applyConsoleKey(e: ConfEntry, o: Options): boolean {
  if (e.key.toLowerCase() !== "console") return false;
  if (e.node.kind !== "map") {
    o.console = { ...o.console, enabled: enabled(e, e.node) };
    return true;
  }
  const c = { enabled: true, users: [] as ConsoleUser[] };
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "enabled":
        c.enabled = enabled(k, k.node);
        break;
      case "users":
        if (k.node.kind !== "array") fail(k, "console users must be an array");
        c.users = k.node.value.map(user);
        break;
      default:
        fail(k, `unknown field "console.${k.key}"`);
    }
  }
  o.console = c;
  return true;
}
