// Small wire helpers for the stream layer: NATS header blocks, Go-style times and durations.

/** A parsed `NATS/1.0[ code[ description]]\r\nKey: Value\r\n…\r\n` block. Keys keep their case (nats-server matches them exactly). */
export interface ParsedHeaders {
  code: number;
  description: string;
  values: Map<string, string>;
}

export function parseHeaders(block: Buffer | null): ParsedHeaders | null {
  if (block === null || block.length === 0) return null;
  const text = block.toString("latin1");
  const lines = text.split("\r\n");
  const status = /^NATS\/1\.0(?: (\d+)(?: (.*))?)?$/.exec(lines[0] ?? "");
  const values = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon);
    if (!values.has(key)) values.set(key, line.slice(colon + 1).trim());
  }
  return { code: status?.[1] ? Number(status[1]) : 0, description: status?.[2] ?? "", values };
}

/** Builds a header block: an optional status (`NATS/1.0 404 No Messages`) and key/value lines. */
export function buildHeaders(status: string, entries: readonly (readonly [string, string])[]): Buffer {
  let s = status === "" ? "NATS/1.0\r\n" : `NATS/1.0 ${status}\r\n`;
  for (const [k, v] of entries) s += `${k}: ${v}\r\n`;
  return Buffer.from(`${s}\r\n`, "latin1");
}

/** Removes the given header lines from a block, keeping everything else byte for byte. */
export function removeHeaders(block: Buffer, keys: readonly string[]): Buffer | null {
  const lines = block.toString("latin1").split("\r\n");
  const kept = lines.filter((line, i) => i === 0 || !keys.some((k) => line.startsWith(`${k}:`)));
  if (kept.filter((l, i) => i > 0 && l !== "").length === 0) return null;
  return Buffer.from(kept.join("\r\n"), "latin1");
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped. `ms` carries microseconds in its fraction. */
export function rfc3339(ms: number): string {
  if (ms <= 0) return ZERO_TIME;
  const whole = Math.floor(ms);
  const nanos = (whole % 1000) * 1e6 + Math.floor((ms - whole) * 1e6);
  const iso = new Date(whole - (whole % 1000)).toISOString(); // …T04:40:59.000Z
  const base = iso.slice(0, 19);
  if (nanos === 0) return `${base}Z`;
  return `${base}.${String(nanos).padStart(9, "0").replace(/0+$/, "")}Z`;
}

/** Parses an RFC 3339 time (nanoseconds allowed) to epoch milliseconds with a fraction; NaN when invalid. */
export function parseRfc3339(s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return NaN;
  const base = Date.parse(`${m[1]}${m[3]}`);
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return base + frac;
}

/** Nanoseconds since the epoch as a decimal string (for ack subjects), from milliseconds with a fraction. */
export function nanosString(ms: number): string {
  const whole = Math.floor(ms);
  const sub = Math.min(999_999, Math.floor((ms - whole) * 1e6));
  return `${whole}${String(1_000_000 + sub).slice(1)}`; // six digits, zeros in front (no padStart: one per delivery)
}

export const NS_PER_MS = 1_000_000;
export const nsToMs = (ns: number): number => ns / NS_PER_MS;
export const msToNs = (ms: number): number => Math.round(ms * NS_PER_MS);

/** Milliseconds with a fraction from nanoseconds since the epoch as a decimal string (an ack subject's `<ts>`); NaN when not a number. */
export function msFromNanosString(ns: string): number {
  if (!/^\d+$/.test(ns)) return NaN;
  // Split before converting: 19 digits are past a double's exact integers.
  if (ns.length <= 6) return Number(ns) / NS_PER_MS;
  return Number(ns.slice(0, -6)) + Number(ns.slice(-6)) / NS_PER_MS;
}

/** A duration in nanoseconds as Go's time.Duration.String() writes it ("1h2m3.5s", "100ms", "0s"): nats-server's error texts use it. */
export function goDurationString(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let n = BigInt(Math.abs(Math.round(ns)));
  const fraction = (value: bigint, unit: bigint, digits: number) => {
    const whole = value / unit;
    const rest = value % unit;
    const tail = rest === 0n ? "" : `.${rest.toString().padStart(digits, "0").replace(/0+$/, "")}`;
    return `${whole}${tail}`;
  };
  if (n < 1_000n) return `${sign}${n}ns`;
  if (n < 1_000_000n) return `${sign}${fraction(n, 1_000n, 3)}µs`;
  if (n < 1_000_000_000n) return `${sign}${fraction(n, 1_000_000n, 6)}ms`;
  let out = "";
  const hours = n / 3_600_000_000_000n;
  n %= 3_600_000_000_000n;
  const minutes = n / 60_000_000_000n;
  n %= 60_000_000_000n;
  if (hours > 0n) out += `${hours}h`;
  if (hours > 0n || minutes > 0n) out += `${minutes}m`;
  return `${sign}${out}${fraction(n, 1_000_000_000n, 9)}s`;
}
