// How nats-server's monitoring JSON spells times, durations and itself (Go's encoding/json).
// Tools (prometheus-nats-exporter, nats-top, nats CLI) parse these into Go structs, so the
// spelling matters: time.Time is RFC 3339 with up to 9 fraction digits, trailing zeros trimmed;
// time.Duration fields are integer nanoseconds; `rtt` is Duration.String(); `uptime`/`idle`
// use nats-server's own myUptime (`1d2h3m4s`).

const NS_PER_MS = 1_000_000n;

/** Milliseconds since the epoch (possibly fractional) as integer nanoseconds. */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
}

// Wall clock with nanosecond resolution: Date.now() anchors a monotonic hrtime reading. It is
// re-anchored when the two drift apart by more than 2 ms (NTP slewing), so it stays consistent
// with the Date.now() stamps connections carry.
let anchorWallNs = msToNs(Date.now());
let anchorHr = process.hrtime.bigint();

/** The current time, in nanoseconds since the epoch. */
export function nowNs(): bigint {
  const wallMs = Date.now();
  const hr = process.hrtime.bigint();
  const ns = anchorWallNs + (hr - anchorHr);
  const drift = Number(ns / NS_PER_MS) - wallMs;
  if (drift > 2 || drift < -2) {
    anchorWallNs = msToNs(wallMs);
    anchorHr = hr;
    return anchorWallNs;
  }
  return ns;
}

/** Go's time.Time JSON (RFC3339Nano, UTC): `2026-11-22T04:05:26.123456789Z`, trailing fraction zeros trimmed. */
export function rfc3339Ns(ns: bigint): string {
  let secs = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    secs -= 1n;
  }
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  const digits = frac.toString().padStart(9, "0").replace(/0+$/, "");
  return digits.length > 0 ? `${base}.${digits}Z` : `${base}Z`;
}

export function rfc3339Ms(ms: number): string {
  return rfc3339Ns(msToNs(ms));
}

/** `whole.fraction` of v / 10^digits with the fraction's trailing zeros trimmed (Go's fmtFrac). */
function fraction(v: number, digits: number): string {
  const scale = 10 ** digits;
  const whole = Math.floor(v / scale);
  const rest = (v % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return rest.length > 0 ? `${whole}.${rest}` : `${whole}`;
}

/** Go's time.Duration.String() for a whole number of nanoseconds: `0s`, `850ns`, `1.234ms`, `2m3.5s`, `1h0m0s`. */
export function goDuration(ns: number): string {
  ns = Math.trunc(ns);
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  const u = Math.abs(ns);
  if (u < 1e3) return `${sign}${u}ns`;
  if (u < 1e6) return `${sign}${fraction(u, 3)}µs`;
  if (u < 1e9) return `${sign}${fraction(u, 6)}ms`;
  const totalSecs = Math.floor(u / 1e9);
  const secPart = `${fraction((totalSecs % 60) * 1e9 + (u % 1e9), 9)}s`;
  const totalMins = Math.floor(totalSecs / 60);
  if (totalMins === 0) return `${sign}${secPart}`;
  const hours = Math.floor(totalMins / 60);
  if (hours === 0) return `${sign}${totalMins}m${secPart}`;
  return `${sign}${hours}h${totalMins % 60}m${secPart}`;
}

/** nats-server's myUptime: whole seconds as `1y2d3h4m5s`, leading zero units dropped (`0s`, `1m5s`). */
export function uptime(ms: number): string {
  const tsecs = Math.floor(Math.max(0, ms) / 1000);
  const tmins = Math.floor(tsecs / 60);
  const thrs = Math.floor(tmins / 60);
  const tdays = Math.floor(thrs / 24);
  const tyrs = Math.floor(tdays / 365);
  if (tyrs > 0) return `${tyrs}y${tdays % 365}d${thrs % 24}h${tmins % 60}m${tsecs % 60}s`;
  if (tdays > 0) return `${tdays}d${thrs % 24}h${tmins % 60}m${tsecs % 60}s`;
  if (thrs > 0) return `${thrs}h${tmins % 60}m${tsecs % 60}s`;
  if (tmins > 0) return `${tmins}m${tsecs % 60}s`;
  return `${tsecs}s`;
}

/** Milliseconds as a Go time.Duration JSON value (integer nanoseconds). */
export function msToDuration(ms: number): number {
  return Math.round(ms * 1e6);
}

const GO_ESCAPES = /[<>&\u2028\u2029]/g;

/**
 * JSON as Go's json.MarshalIndent(v, "", "  ") (or json.Marshal when !indent) writes it: the same as
 * JSON.stringify, plus Go's HTML-safe escapes of <, >, & and U+2028/U+2029 (they occur only inside
 * strings). Properties set to undefined are left out, which is how omitempty fields are written here.
 */
export function goJson(value: unknown, indent = true): string {
  const text = indent ? JSON.stringify(value, null, 2) : JSON.stringify(value);
  return text.replace(GO_ESCAPES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
