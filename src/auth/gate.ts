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
import { PublishRateLimiter } from "./ratelimit.ts";

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
    private readonly auth: Authenticator,
    readonly nonce: string,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.timedOut(), timeoutMs);
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
    const result = this.auth.authenticate(conn.transport.kind, connect, this.nonce, conn.transport.authCookies);
    if (result === null) {
      this.refuse(connect);
      return false;
    }
    if (!(result instanceof Promise)) {
      return this.admit(result, false);
    }
    this.pending = true;
    this.holding = true; // a later CONNECT (re-authentication) holds what follows too
    conn.transport.pauseReading();
    result.then(
      (user) => this.settled(user, connect),
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
    const conn = this.conn;
    this.clearTimer();
    conn.server.stats.authFailures++;
    conn.server.log.error(`${conn.logPrefix} - ${this.auth.describeFailure(connect ?? {})}`);
    conn.server.events?.authFailed(conn, connect);
    conn.closeWithError("AuthorizationViolation", CloseReason.AuthenticationViolation);
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
