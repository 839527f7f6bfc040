// Who is signed in to the console. A sign-in checks the console's own users (src/console/options.ts) with
// the server's password check (plain or bcrypt, src/auth/passwords.ts) and opens a session: a random id
// in an HttpOnly, SameSite=Strict cookie, and a second random value, the CSRF token, that the page sends
// back in a header with every POST (a cross-site form can send the cookie, never the header). Failed
// sign-ins are counted per remote address: past MAX_FAILURES_PER_MINUTE, that address waits out the minute.
import { randomBytes } from "../random.ts";
import { comparePassword, plainEquals } from "../auth/passwords.ts";
import type { ConsoleRole, ConsoleUser } from "./options.ts";

export const COOKIE = "natter_console";
/** A session ends this long after its last request. */
const IDLE_MS = 30 * 60_000;
/** At most this many sessions at once: the oldest is dropped for a new one (memory stays bounded). */
const MAX_SESSIONS = 256;
/** Failed sign-ins allowed per remote address per minute; past that, sign-ins from it are refused until the minute is over. */
export const MAX_FAILURES_PER_MINUTE = 10;
/** Remote addresses with recent failures that are remembered at most (the oldest is forgotten first). */
const MAX_REMEMBERED = 4096;

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly role: ConsoleRole;
  readonly csrf: string;
  lastSeenMs: number;
}

const token = () => randomBytes(24).toString("base64url");

export class Sessions {
  private readonly byId = new Map<string, Session>();
  /** Failed sign-ins per remote address: the start of its current minute and the count in it. */
  private readonly failures = new Map<string, { since: number; count: number }>();

  /** Whether `remote` has used up its failed sign-ins for this minute (then no password is even checked). */
  throttled(remote: string): boolean {
    const f = this.failures.get(remote);
    if (f === undefined) return false;
    if (Date.now() - f.since >= 60_000) {
      this.failures.delete(remote);
      return false;
    }
    return f.count >= MAX_FAILURES_PER_MINUTE;
  }

  private failed(remote: string): void {
    const now = Date.now();
    const f = this.failures.get(remote);
    if (f === undefined || now - f.since >= 60_000) {
      this.failures.delete(remote);
      if (this.failures.size >= MAX_REMEMBERED) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(remote, { since: now, count: 1 });
    } else {
      f.count++;
    }
  }

  constructor(private readonly users: readonly ConsoleUser[]) {}

  /** The session for these credentials, or null. Unknown users cost a comparison too (no timing hint). */
  async signIn(user: string, password: string, remote = ""): Promise<Session | null> {
    const u = this.users.find((c) => c.user === user);
    if (u === undefined) {
      plainEquals("no such user", password);
      this.failed(remote);
      return null;
    }
    if (!(await comparePassword(u.password, password))) {
      this.failed(remote);
      return null;
    }
    if (this.byId.size >= MAX_SESSIONS) this.byId.delete(this.byId.keys().next().value!);
    const s: Session = { id: token(), user: u.user, role: u.role, csrf: token(), lastSeenMs: Date.now() };
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session named by the request's cookie, or null. */
  fromRequest(req: Request): Session | null {
    const id = cookieValue(req.headers.get("cookie") ?? "", COOKIE);
    if (id === null) return null;
    const s = this.byId.get(id);
    if (s === undefined) return null;
    const now = Date.now();
    if (now - s.lastSeenMs > IDLE_MS) {
      this.byId.delete(id);
      return null;
    }
    s.lastSeenMs = now;
    return s;
  }

  signOut(s: Session): void {
    this.byId.delete(s.id);
  }
}

function cookieValue(header: string, name: string): string | null {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The Set-Cookie header for a session (an empty value and Max-Age=0 signs out); `secure` over HTTPS. */
export function sessionCookie(id: string | null, secure = false): string {
  return `${COOKIE}=${id ?? ""}; Path=/console; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}${id === null ? "; Max-Age=0" : ""}`;
}
