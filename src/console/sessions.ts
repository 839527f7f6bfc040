// Who is signed in to the console. A sign-in checks the console's own users (src/console/options.ts) with
// the server's password check (plain or bcrypt, src/auth/passwords.ts) and opens a session: a random id
// in an HttpOnly, SameSite=Strict cookie, and a second random value, the CSRF token, that the page sends
// back in a header with every POST (a cross-site form can send the cookie, never the header).
import { randomBytes } from "node:crypto";
import { comparePassword, plainEquals } from "../auth/passwords.ts";
import type { ConsoleRole, ConsoleUser } from "./options.ts";

export const COOKIE = "natter_console";
/** A session ends this long after its last request. */
const IDLE_MS = 30 * 60_000;
/** At most this many sessions at once: the oldest is dropped for a new one (memory stays bounded). */
const MAX_SESSIONS = 256;

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

  constructor(private readonly users: readonly ConsoleUser[]) {}

  /** The session for these credentials, or null. Unknown users cost a comparison too (no timing hint). */
  async signIn(user: string, password: string): Promise<Session | null> {
    const u = this.users.find((c) => c.user === user);
    if (u === undefined) {
      plainEquals("no such user", password);
      return null;
    }
    if (!(await comparePassword(u.password, password))) return null;
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

/** The Set-Cookie header for a session (an empty value and Max-Age=0 signs out). */
export function sessionCookie(id: string | null): string {
  return `${COOKIE}=${id ?? ""}; Path=/console; HttpOnly; SameSite=Strict${id === null ? "; Max-Age=0" : ""}`;
}
