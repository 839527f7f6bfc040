// A config reload changed authentication or permissions: nats-server's reloadAuthorization (server/reload.go)
// for natter's clients. The server gets a new Authenticator, then every connected client is checked again
// with the credentials of its last CONNECT (Connection.credentials, kept in memory only):
//
// - Credentials that no longer pass (a removed user, a changed password or token, authentication turned on
//   for a client that sent none): `-ERR 'Authorization Violation'`, logged and counted like a refused
//   CONNECT, and closed. (nats-server closes a client whose *user* was removed without an -ERR, as if it had
//   moved account; natter tells it why, as it does for a changed password.)
// - A user now in another account: closed without an -ERR, so that it reconnects into that account (as
//   nats-server's clientHasMovedToDifferentAccount).
// - Otherwise the client gets the user's new permissions (a fresh ClientPermissions: its caches start
//   empty) and publish rate limit at once, and every subscription the new permissions refuse is removed
//   with nats-server's processSubsOnConfigReload: `-ERR 'Permissions Violation for Subscription to "foo"
//   (sid "1")'` (`using queue "q"` for a queue subscription), logged as `Removed sub … - not authorized`.
//   The connection stays.
// - A client still before its CONNECT: that CONNECT is checked against the new Authenticator (nats-server
//   would close it; natter lets the CONNECT in flight decide).
//
// A bcrypt password is not compared again when the configured hash and the client's password are the ones
// already found to match (Connection.verifiedSecret): a reload that leaves a user alone costs no bcrypt.
// Otherwise the comparison runs off the event loop (Bun.password); meanwhile the client already has the
// user's new permissions, and the answer is applied only if the connection is still open and has sent no
// other CONNECT since (Connection.authEpoch). One reload compares each (hash, password) pair once.
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import type { AuthenticatedUser, Authenticator, Claim } from "./authenticator.ts";
import { errFrame } from "../protocol/frames.ts";
import { CloseReason } from "../protocol/errors.ts";
import { ClientPermissions } from "./permissions.ts";
import { comparePassword } from "./passwords.ts";
import { PublishRateLimiter } from "./ratelimit.ts";
import { AuthGate, refuseClient } from "./gate.ts";

/** Comparisons of one reload, by configured secret and given password: each pair is checked once. */
type Memo = Map<string, boolean | Promise<boolean>>;

/** Installs `auth` as the server's Authenticator and checks every connected client against it. */
export function reloadAuthorization(server: Server, auth: Authenticator | null): void {
  server.auth = auth;
  const memo: Memo = new Map();
  for (const conn of [...server.connections.values()]) recheckConnection(conn, memo);
  server.flushDirty();
}

/** Checks one connected client against the server's (new) Authenticator. */
export function recheckConnection(conn: Connection, memo: Memo = new Map()): void {
  if (conn.closed) return;
  const server = conn.server;
  const auth = server.auth;
  const kind = conn.transport.kind;
  const required = auth !== null && auth.requiredFor(kind);
  const gate = conn.authGate;
  // A CONNECT being checked: it settles against the Authenticator it started with, then comes back here.
  if (gate !== null && gate.checking) return;
  if (gate !== null && gate.holding) {
    if (required) gate.retarget(auth);
    else {
      gate.dispose();
      conn.authGate = null;
    }
    return;
  }
  if (!conn.connectReceived && !conn.spoken) {
    // Nothing said yet (TLS handshake, CONNECT in flight): its first op meets the new rules.
    if (required && gate === null) auth.attach(conn);
    return;
  }
  const epoch = ++conn.authEpoch;
  const credentials = conn.credentials ?? {};
  if (!required) {
    if (gate !== null) {
      gate.dispose();
      conn.authGate = null; // a later CONNECT is not checked any more
    }
    apply(conn, { name: conn.authUser, permissions: null, publishBucket: null, account: null });
    return;
  }
  // Later CONNECTs (re-authentication) are checked against the new Authenticator.
  if (gate !== null) gate.retarget(auth);
  else conn.authGate = new AuthGate(conn, auth, "", null);
  const claim = auth.resolve(kind, credentials, gate?.nonce ?? "", conn.transport.authCookies, conn.transport.peerCertificate ?? null);
  if (claim === null) {
    refuseClient(conn, auth, credentials);
    return;
  }
  if (claim.secret === null || claim.secret === conn.verifiedSecret) {
    apply(conn, claim.user);
    return;
  }
  const match = compareOnce(memo, claim);
  if (!(match instanceof Promise)) {
    if (!match) {
      refuseClient(conn, auth, credentials);
      return;
    }
    conn.verifiedSecret = claim.secret;
    apply(conn, claim.user);
    return;
  }
  // bcrypt: the user's new permissions hold from now; whether its password still matches comes later.
  if (!apply(conn, claim.user)) return;
  match.then((ok) => {
    if (conn.closed || conn.authEpoch !== epoch) return;
    if (ok) conn.verifiedSecret = claim.secret;
    else refuseClient(conn, auth, credentials);
    server.flushDirty();
  });
}

function compareOnce(memo: Memo, claim: Claim): boolean | Promise<boolean> {
  const key = `${claim.secret}\u0000${claim.given}`;
  let match = memo.get(key);
  if (match === undefined) {
    match = comparePassword(claim.secret!, claim.given);
    memo.set(key, match);
  }
  return match;
}

/** Gives an accepted client its user's account check, permissions and rate limit; false when it was closed. */
function apply(conn: Connection, user: AuthenticatedUser): boolean {
  const server = conn.server;
  const account = user.account ?? server.accounts.global;
  if (account !== conn.account) {
    // nats-server closes it without an -ERR: the client reconnects, into its new account.
    conn.close(CloseReason.ClientClosed, null, `account changed by a config reload (now ${account.name})`);
    return false;
  }
  conn.authUser = user.name;
  conn.perms = user.permissions !== null ? new ClientPermissions(user.permissions) : null;
  const bucket = user.publishBucket;
  const limiter = conn.rateLimiter;
  if (limiter === null) {
    if (bucket !== null) conn.rateLimiter = new PublishRateLimiter(conn, bucket);
  } else if (bucket !== null || limiter.paused) {
    limiter.retarget(bucket); // a paused limiter still holds reads to replay in order
  } else {
    conn.rateLimiter = null;
  }
  if (conn.perms !== null) removeRefusedSubscriptions(conn, conn.perms);
  return true;
}

/** nats-server's processSubsOnConfigReload: subscriptions the new permissions refuse are removed, with an -ERR each. */
function removeRefusedSubscriptions(conn: Connection, perms: ClientPermissions): void {
  const refused = [];
  // canSubscribe also re-arms the delivery filter for wildcards that overlap a deny (as nats-server rebuilds mperms).
  for (const sub of conn.subscriptions.values()) if (!perms.canSubscribe(sub.subject, sub.queue)) refused.push(sub);
  const who = authUserLabel(conn);
  for (const sub of refused) {
    conn.removeSubscription(sub);
    const subject = JSON.stringify(sub.subject);
    const sid = JSON.stringify(sub.sid);
    if (sub.queue !== null) {
      const queue = JSON.stringify(sub.queue);
      conn.queueBytes(errFrame(`Permissions Violation for Subscription to ${subject} using queue ${queue} (sid ${sid})`));
      conn.server.log.info(`Removed sub ${subject} using queue ${queue} (sid ${sid}) for ${who} - not authorized`);
    } else {
      conn.queueBytes(errFrame(`Permissions Violation for Subscription to ${subject} (sid ${sid})`));
      conn.server.log.info(`Removed sub ${subject} (sid ${sid}) for ${who} - not authorized`);
    }
  }
}

/** nats-server's getAuthUser: how a client's identity is logged (a token never). */
function authUserLabel(conn: Connection): string {
  const c = conn.credentials;
  if (typeof c?.nkey === "string" && c.nkey !== "") return `Nkey ${JSON.stringify(c.nkey)}`;
  if (typeof c?.user === "string" && c.user !== "") return `User ${JSON.stringify(c.user)}`;
  if (typeof c?.auth_token === "string" && c.auth_token !== "") return `Token "[REDACTED]"`;
  if (conn.authUser !== "") return `User ${JSON.stringify(conn.authUser)}`; // a no_auth_user
  return `User "N/A"`;
}
