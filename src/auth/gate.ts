// A connection's way in, when authentication is required (Connection.authGate, for the connection's
// life): until its CONNECT is accepted, its input passes through here instead of straight to the parser,
// and every CONNECT (a client may send another) is checked here.
//
// As nats-server (server/parser.go, client.go):
// - The first op must be CONNECT (any other first byte is an Authorization Violation), unless a
//   no_auth_user is configured: then any op makes the client that user.
// - No CONNECT within the auth timeout: `-ERR 'Authentication Timeout'`, close.
// - Refused credentials: `-ERR 'Authorization Violation'`, close; logged with the client's address and
//   counted (ServerStats.authFailures).
// Input is fed to the parser one line at a time up to the CONNECT, so nothing after a CONNECT is parsed
// before that CONNECT is decided. A bcrypt check is asynchronous: meanwhile reads are paused and what
// still arrives is held (bounded), then replayed in order once the client is let in.
import type { Connection } from "../connection.ts";
import { CloseReason, ProtocolError } from "../protocol/errors.ts";
import { OK_FRAME } from "../protocol/frames.ts";
import { ClientPermissions } from "./permissions.ts";
import type { AuthenticatedUser, Authenticator, Credentials } from "./authenticator.ts";
import { comparePassword } from "./passwords.ts";
import { PublishRateLimiter } from "./ratelimit.ts";
import { recheckConnection } from "./reload.ts";

/** nats-server's own: a bare read is at most a few KB; more than this while a check is pending is abuse. */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

export class AuthGate {
  private timer: ReturnType<typeof setTimeout> | null;
  /** A CONNECT's credentials are being checked (bcrypt, off the event loop). */
  private pending = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** No byte seen yet: the next one starts the first op. */
  private atFirstOp = true;
  /** Reads go through the gate: before the CONNECT is accepted, and while one is being checked. */
  holding = true;

  constructor(
    private readonly conn: Connection,
    /** The server's Authenticator when the gate was made; a config reload may swap it (src/auth/reload.ts). */
    private auth: Authenticator,
    readonly nonce: string,
    /** null: the client is in already (a config reload turned authentication on): the gate checks its next CONNECTs. */
    timeoutMs: number | null,
  ) {
    this.timer = timeoutMs === null ? null : setTimeout(() => this.timedOut(), timeoutMs);
    if (timeoutMs === null) this.holding = false;
  }

  /** A CONNECT's credentials are being checked (bcrypt): a config reload re-checks the client once they are. */
  get checking(): boolean {
    return this.pending;
  }

  /** A config reload, before this client's CONNECT: that CONNECT is checked against the new Authenticator. */
  retarget(auth: Authenticator): void {
    this.auth = auth;
  }

  /** A config reload turned authentication off for this kind of client: the gate goes away. */
  dispose(): void {
    this.clearTimer();
    this.holding = false;
  }

  /** A read, before the client is authenticated. */
  read(data: Buffer): void {
    const conn = this.conn;
    if (this.pending) {
      this.hold(data);
      return;
    }
    if (this.atFirstOp && data.length > 0) {
      this.atFirstOp = false;
      const b = data[0];
      if (b !== 67 /* C */ && b !== 99 /* c */) {
        const user = this.auth.noAuthUserFor(conn.transport.kind);
        if (user === null) {
          this.refuse(null);
          return;
        }
        // nats-server: with a no_auth_user, a client may start with another op (telnet demos) and is that user.
        if (this.admit(user, false)) conn.readAuthenticated(data);
        return;
      }
    }
    let position = 0;
    while (position < data.length) {
      const lf = data.indexOf(10, position);
      const end = lf < 0 ? data.length : lf + 1;
      conn.parse(position === 0 && end === data.length ? data : data.subarray(position, end));
      position = end;
      if (conn.closed) return;
      if (this.pending) {
        if (position < data.length) this.hold(data.subarray(position));
        return;
      }
      if (!this.holding) {
        if (position < data.length) conn.readAuthenticated(data.subarray(position)); // rate-limited from here
        return;
      }
    }
  }

  /**
   * A CONNECT arrived (Connection.onConnect): true to go on at once (credentials accepted), false when the
   * connection was closed or the answer is pending (the gate then finishes the CONNECT itself).
   */
  authorize(connect: Credentials): boolean {
    this.clearTimer();
    const conn = this.conn;
    conn.authEpoch++; // a config reload's re-check still pending is about the credentials before these
    const claim = this.auth.resolve(conn.transport.kind, connect, this.nonce, conn.transport.authCookies, conn.transport.peerCertificate ?? null);
    if (claim === null) {
      this.refuse(connect);
      return false;
    }
    const match = claim.secret === null ? true : comparePassword(claim.secret, claim.given);
    if (!(match instanceof Promise)) {
      if (!match) {
        this.refuse(connect);
        return false;
      }
      conn.verifiedSecret = claim.secret;
      return this.admit(claim.user, false);
    }
    this.pending = true;
    this.holding = true; // a later CONNECT (re-authentication) holds what follows too
    conn.transport.pauseReading();
    match.then(
      (ok) => {
        if (ok) conn.verifiedSecret = claim.secret;
        this.settled(ok ? claim.user : null, connect);
      },
      () => this.settled(null, connect),
    );
    return false;
  }

  private settled(user: AuthenticatedUser | null, connect: Credentials): void {
    const conn = this.conn;
    this.pending = false;
    if (conn.closed) return;
    conn.transport.resumeReading();
    if (user === null) {
      this.refuse(connect);
      conn.server.flushDirty();
      return;
    }
    this.admit(user, true);
    // A config reload swapped the Authenticator while this was being checked: check the client again now.
    if (conn.server.auth !== this.auth) recheckConnection(conn);
    // Replay what arrived meanwhile, in order (it may hold another CONNECT that is pending again).
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      if (conn.closed) break;
      if (this.holding) this.read(held[i]!);
      else conn.readAuthenticated(held[i]!);
    }
    conn.server.flushDirty();
  }

  /** Lets the client in as `user`; `late`: the CONNECT's +OK is still owed (it was pending). */
  private admit(user: AuthenticatedUser, late: boolean): boolean {
    const conn = this.conn;
    this.clearTimer();
    this.holding = false;
    if (!conn.bindAccount(user.account ?? conn.server.accounts.global)) return false;
    conn.authUser = user.name;
    conn.perms = user.permissions !== null ? new ClientPermissions(user.permissions) : null;
    conn.rateLimiter = user.publishBucket !== null ? new PublishRateLimiter(conn, user.publishBucket) : null;
    conn.server.events?.clientConnected(conn);
    if (late && conn.verbose) conn.queueBytes(OK_FRAME);
    return true;
  }

  private refuse(connect: Credentials | null): void {
    this.clearTimer();
    refuseClient(this.conn, this.auth, connect);
  }

  private hold(data: Buffer): void {
    this.heldBytes += data.length;
    if (this.heldBytes > MAX_HELD_BYTES) {
      this.conn.close(CloseReason.ProtocolViolation, null, "too much input while authenticating");
      return;
    }
    this.held.push(Buffer.from(data)); // the read buffer is only valid during the call
  }

  private timedOut(): void {
    this.timer = null;
    const conn = this.conn;
    if (conn.closed || !this.holding || this.pending) return;
    conn.server.log.debug(`${conn.logPrefix} - ${ProtocolError.AuthenticationTimeout.text}`);
    conn.closeWithError("AuthenticationTimeout", CloseReason.AuthenticationTimeout);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

/** `-ERR 'Authorization Violation'` and close: logged, counted and reported as nats-server's authViolation. */
export function refuseClient(conn: Connection, auth: Authenticator, connect: Credentials | null): void {
  conn.server.stats.authFailures++;
  conn.server.log.error(`${conn.logPrefix} - ${auth.describeFailure(connect ?? {})}`);
  conn.server.events?.authFailed(conn, connect);
  conn.closeWithError("AuthorizationViolation", CloseReason.AuthenticationViolation);
}
