// The page's only way to the server: same-origin fetches (the monitoring endpoints and /console/api),
// with the CSRF token on every POST. Nothing here ever talks to another origin.

let csrf = "";

export interface Me {
  user: string;
  role: "readonly" | "admin";
  csrf: string;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  const body = text ? JSON.parse(text) : {};
  if (!res.ok) throw new HttpError(res.status, body.error ?? res.statusText);
  return body as T;
}

/** GET a JSON document: a monitoring endpoint (`/varz`) or the console's (`/console/api/...`). */
export async function getJson<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { credentials: "same-origin" }));
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  return parse<T>(await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  }));
}

export async function session(): Promise<Me | null> {
  const me = await getJson<Me | { user: null }>("/console/api/session");
  if (me.user === null) return null;
  csrf = me.csrf;
  return me;
}

export async function login(user: string, password: string): Promise<Me> {
  const me = await post<Me>("/console/api/login", { user, password });
  csrf = me.csrf;
  return me;
}

export async function logout(): Promise<void> {
  await post("/console/api/logout", {});
  csrf = "";
}
