// Checks the security options as a whole (flags laid over the config file), with nats-server's messages
// (server/auth.go validateAuth/validateNoAuthUser, websocket.go validateWebsocketOptions, opts.go overrideTLS).
import { nodeFs } from "../node-builtins.ts";
import { OptionsError, type Options } from "../options.ts";
import type { TlsOptions } from "./options.ts";

export function validateSecurityOptions(o: Options): void {
  const a = o.authorization;
  const accountUsers = o.accounts.some((acc) => acc.users.length > 0);
  if (a) {
    if ((a.user || a.password) && a.token) throw new OptionsError("Cannot have a user/pass and token");
    // The config file's checks (src/accounts/config.ts) again, for --user/--auth laid over account users.
    if (accountUsers && a.user) throw new OptionsError("Can not have a single user/pass and accounts");
    if (accountUsers && a.token) throw new OptionsError("Can not have a token and accounts");
    if (a.noAuthUser) checkNoAuthUser(o, a.noAuthUser);
  }
  const ws = o.websocketAuth;
  if (ws) {
    const hasUsers = (a?.users?.length ?? 0) > 0 || accountUsers;
    if (hasUsers && ws.user) throw new OptionsError("websocket authentication username not compatible with presence of users/nkeys");
    if (hasUsers && ws.token) throw new OptionsError("websocket authentication token not compatible with presence of users/nkeys");
    if (ws.noAuthUser) checkNoAuthUser(o, ws.noAuthUser);
  }
  if (o.tls) checkTls(o.tls, "");
  if (o.wsTls) checkTls(o.wsTls, "websocket ");
}

/** nats-server's validateNoAuthUser: a user (or nkey) of the authorization block or of an account. */
function checkNoAuthUser(o: Options, name: string): void {
  const accountUsers = o.accounts.flatMap((acc) => acc.users);
  const blockUsers = o.authorization?.users;
  if (!blockUsers && accountUsers.length === 0) throw new OptionsError(`no_auth_user: "${name}" present, but users are not defined`);
  const users = [...(blockUsers ?? []), ...accountUsers];
  if (!users.some((u) => u.user === name || u.nkey === name)) {
    throw new OptionsError(`no_auth_user: "${name}" not present as user in authorization block or account configuration`);
  }
}

/** The files must be readable now: a server that cannot load its certificate should not start. */
function checkTls(t: TlsOptions, what: string): void {
  if (!t.certFile) throw new OptionsError(`${what}TLS Server certificate must be present and valid`);
  if (!t.keyFile) throw new OptionsError(`${what}TLS Server private key must be present and valid`);
  for (const file of [t.certFile, t.keyFile, t.caFile]) {
    if (!file) continue;
    try {
      nodeFs().readFileSync(file);
    } catch (error) {
      throw new OptionsError(`${what}TLS: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
}
