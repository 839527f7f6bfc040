// The console's settings (natter's own; nats-server has no console): `--console`, or in the config file
//   console {
//     enabled: true
//     users: [
//       { user: ops,    password: "$2a$11$…", role: admin }     # bcrypt, as elsewhere in the config
//       { user: viewer, password: "s3cret",   role: readonly }
//     ]
//   }
// Off by default. Served on the monitoring port under /console; its users are its own (not NATS users).
// An `alerts { … }` block inside sets alert thresholds (src/console/alerts.ts).
import { OptionsError } from "../options.ts";
import type { AlertOptions } from "./alerts.ts";

export type ConsoleRole = "readonly" | "admin";
export const CONSOLE_ROLES: readonly ConsoleRole[] = ["readonly", "admin"];

export interface ConsoleUser {
  user: string;
  /** Plain text or a bcrypt hash (src/auth/passwords.ts decides). Never sent to a browser. */
  password: string;
  role: ConsoleRole;
}

export interface ConsoleOptions {
  enabled: boolean;
  users: ConsoleUser[];
  /** Alert thresholds (src/console/alerts.ts); {} = none. */
  alerts: AlertOptions;
}

export const defaultConsoleOptions: Readonly<ConsoleOptions> = { enabled: false, users: [], alerts: {} };

/** A console that is on needs the monitoring port to live on and at least one user to let in. */
export function validateConsoleOptions(o: { console: ConsoleOptions; httpPort: number; httpsPort: number }): void {
  if (!o.console.enabled) return;
  if (o.httpPort === 0 && o.httpsPort === 0) throw new OptionsError("console needs the monitoring port (-m / http_port, or https_port)");
  if (o.console.users.length === 0) throw new OptionsError("console is enabled but has no users (console { users: [{ user, password, role }] })");
  const seen = new Set<string>();
  for (const u of o.console.users) {
    if (seen.has(u.user)) throw new OptionsError(`console user ${JSON.stringify(u.user)} is defined twice`);
    seen.add(u.user);
  }
}
