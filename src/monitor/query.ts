// Query parameters read the way nats-server's monitor reads them (Go's strconv), with its error
// texts: a bad value answers 400 with that text as a plain body.

/** A request nats-server would answer with 400 and this text. */
export class BadRequest extends Error {}

function quote(s: string): string {
  return JSON.stringify(s);
}

/** Go's strconv.ParseBool; absent or empty = false. */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === "") return false;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  throw new BadRequest(`Error decoding boolean for '${name}': strconv.ParseBool: parsing ${quote(v)}: invalid syntax`);
}

/** Go's strconv.Atoi (64-bit int); absent or empty = 0. */
export function queryInt(q: URLSearchParams, name: string): number {
  const v = q.get(name);
  if (v === null || v === "") return 0;
  if (!/^[+-]?\d+$/.test(v)) throw new BadRequest(`Error decoding int for '${name}': strconv.Atoi: parsing ${quote(v)}: invalid syntax`);
  const n = BigInt(v);
  if (n > 9223372036854775807n || n < -9223372036854775808n) {
    throw new BadRequest(`Error decoding int for '${name}': strconv.Atoi: parsing ${quote(v)}: value out of range`);
  }
  return Number(n);
}

/** Go's strconv.ParseUint(v, 10, 64); absent or empty = 0. */
export function queryUint(q: URLSearchParams, name: string): number {
  const v = q.get(name);
  if (v === null || v === "") return 0;
  if (!/^\d+$/.test(v)) throw new BadRequest(`Error decoding uint64 for '${name}': strconv.ParseUint: parsing ${quote(v)}: invalid syntax`);
  const n = BigInt(v);
  if (n > 18446744073709551615n) {
    throw new BadRequest(`Error decoding uint64 for '${name}': strconv.ParseUint: parsing ${quote(v)}: value out of range`);
  }
  return Number(n);
}

/** `subs=detail` → detail; otherwise `subs` is a boolean. */
export function querySubs(q: URLSearchParams): { subs: boolean; detail: boolean } {
  if ((q.get("subs") ?? "").toLowerCase() === "detail") return { subs: false, detail: true };
  return { subs: queryBool(q, "subs"), detail: false };
}
