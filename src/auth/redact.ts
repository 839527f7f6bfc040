// Keeps credentials out of logs and protocol traces. nats-server redacts the CONNECT password in its
// trace (removePassFromTrace); natter redacts every credential a CONNECT can carry: pass, auth_token,
// jwt and sig values, wherever they appear in a traced read.
//
// natter traces whole reads, and a CONNECT may be split across reads: a read that ends inside a CONNECT
// line has the rest of its line hidden, and the next read has everything up to its first newline hidden.

/** A credential key with its value: quoted JSON (escapes included), or unquoted up to a delimiter. */
const SECRET = /("?(?:pass\w*|auth_token|token|jwt|sig)"?\s*[:=]\s*)("(?:[^"\\\r\n]|\\.)*"?|[^,\r\n}\s]*)/gi;
const CONNECT_START = /connect/i;

export const REDACTED = "[REDACTED]";

/** Replaces credential values in text (a CONNECT line, a JSON snippet). */
export function redactSecrets(text: string): string {
  return text.replace(SECRET, (_m, key: string, value: string) => `${key}${value.startsWith('"') ? `"${REDACTED}"` : REDACTED}`);
}

/** Connections whose last traced read ended inside a CONNECT line. */
const insideConnect = new WeakSet<object>();

/** A read's bytes (latin1) made safe to trace for `owner` (the connection). */
export function redactRead(owner: object, text: string): string {
  let head = "";
  let rest = text;
  if (insideConnect.has(owner)) {
    const lf = rest.indexOf("\n");
    if (lf < 0) return REDACTED; // still inside the CONNECT line
    insideConnect.delete(owner);
    head = `${REDACTED}\n`;
    rest = rest.slice(lf + 1);
  }
  // A CONNECT with no newline after it continues in the next read: hide its tail now, and that read's head.
  const lastLf = rest.lastIndexOf("\n");
  const tail = rest.slice(lastLf + 1);
  const m = CONNECT_START.exec(tail);
  if (m !== null) {
    insideConnect.add(owner);
    rest = `${rest.slice(0, lastLf + 1 + m.index + m[0].length)} ${REDACTED}`;
  }
  return head + redactSecrets(rest);
}
