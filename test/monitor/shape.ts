// Compares the shape of our monitoring JSON with nats-server's: every field nats-server writes must be
// in ours with the same JSON type (recursively; arrays by element type), and ours may not add fields
// nats-server does not know. Numbers are also checked against the Go type tools decode them into:
// everything but a few float64 fields must be an integer, or a Go int field fails to unmarshal.

export type JsonType = "string" | "number" | "boolean" | "null" | "array" | "object";

export function jsonType(v: unknown): JsonType {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  const t = typeof v;
  if (t === "string" || t === "number" || t === "boolean" || t === "object") return t;
  throw new Error(`not a JSON value: ${String(v)}`);
}

/** float64 fields in Varz, SublistStats (everything else numeric is an integer type in Go). */
const FLOAT_FIELDS = new Set(["cpu", "cache_hit_rate", "avg_fanout", "auth_timeout", "tls_timeout"]);

export interface ShapeOptions {
  /** Paths nats-server writes that we deliberately leave out (documented in the tests). */
  absent?: readonly string[];
  /** Paths we write that nats-server 2.9.10 does not (v2.10.0 fields). */
  extra?: readonly string[];
  /** Paths that are Go maps: keys vary, only value types are compared. */
  maps?: readonly string[];
}

/** One object standing for all elements of an array of objects: every key any element has. */
function mergeElements(items: readonly unknown[]): unknown {
  if (items.length === 0) return undefined;
  if (items.every((x) => jsonType(x) === "object")) {
    const merged: Record<string, unknown> = {};
    for (const item of items as Record<string, unknown>[]) {
      for (const [k, v] of Object.entries(item)) {
        if (!(k in merged)) merged[k] = v;
        else if (Array.isArray(merged[k]) && Array.isArray(v)) merged[k] = [...(merged[k] as unknown[]), ...v];
      }
    }
    return merged;
  }
  return items[0];
}

/** Problems found, one line each (empty = same shape). */
export function shapeDiff(reference: unknown, ours: unknown, options: ShapeOptions = {}, path = ""): string[] {
  const problems: string[] = [];
  const absent = new Set(options.absent ?? []);
  const extra = new Set(options.extra ?? []);
  const maps = new Set(options.maps ?? []);
  const where = path || "(root)";

  const tr = jsonType(reference);
  const to = jsonType(ours);
  if (tr !== to) {
    problems.push(`${where}: nats-server has ${tr}, ours is ${to}`);
    return problems;
  }
  const field = path.replace(/\[\]$/, "").split(".").pop() ?? "";
  if (to === "number" && !FLOAT_FIELDS.has(field) && !Number.isInteger(ours)) {
    problems.push(`${where}: ${String(ours)} is not an integer (a Go integer field)`);
  }
  if (tr === "array") {
    const r = mergeElements(reference as unknown[]);
    const o = mergeElements(ours as unknown[]);
    if (r !== undefined && o === undefined) problems.push(`${where}: ours is empty, nats-server has elements`);
    else if (r !== undefined) problems.push(...shapeDiff(r, o, options, `${path}[]`));
    return problems;
  }
  if (tr === "object") {
    const ro = reference as Record<string, unknown>;
    const oo = ours as Record<string, unknown>;
    if (maps.has(path)) {
      const r = mergeElements(Object.values(ro));
      const o = mergeElements(Object.values(oo));
      if (r !== undefined && o !== undefined) problems.push(...shapeDiff(r, o, options, `${path}{}`));
      return problems;
    }
    for (const key of Object.keys(ro)) {
      const p = path ? `${path}.${key}` : key;
      if (absent.has(p)) continue;
      if (!(key in oo)) problems.push(`${p}: missing (nats-server has ${jsonType(ro[key])})`);
      else problems.push(...shapeDiff(ro[key], oo[key], options, p));
    }
    for (const key of Object.keys(oo)) {
      const p = path ? `${path}.${key}` : key;
      if (!(key in ro) && !extra.has(p)) problems.push(`${p}: ours has it, nats-server does not`);
    }
  }
  return problems;
}
