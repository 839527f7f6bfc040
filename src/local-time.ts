// The local time of log lines, without asking JavaScript's Date for it where that can be avoided.
//
// Date's local-time getters load the ICU time zone machinery: ~3 MiB of RSS for the life of the process
// (measured: bare Bun 28.2 → 32.9 MiB at the first getHours(), 1.5 MiB with getUTCHours()). Servers
// mostly run in a zone without daylight saving time (UTC in containers and on most edge devices): there
// the local time is UTC plus a fixed offset, read here from TZ or from /etc/localtime (a TZif file, see
// tzfile(5)). Any other zone (one with transitions, or a TZ that is not a plain UTC name) gets Date's own
// local time, exactly as before.

/** The zone's fixed offset from UTC in ms, or null when it has transitions (or cannot be told). */
export function fixedUtcOffsetMs(tz: string | undefined = process.env.TZ, readZoneFile: () => Buffer = readLocaltime): number | null {
  if (tz !== undefined) {
    // glibc: an empty TZ (or ":") is UTC; UTC by name. Any other value is left to Date.
    const name = tz.startsWith(":") ? tz.slice(1) : tz;
    return ["", "UTC", "UTC0", "Etc/UTC", "GMT", "GMT0", "Etc/GMT", "Universal", "Zulu", "UCT"].includes(name) ? 0 : null;
  }
  let file: Buffer;
  try {
    file = readZoneFile();
  } catch {
    return 0; // no /etc/localtime: glibc uses UTC
  }
  return tzifFixedOffsetMs(file);
}

/** /etc/localtime, mapped rather than read: node:fs would cost 3.6 MiB of RSS at every start (src/node-builtins.ts). */
function readLocaltime(): Buffer {
  const mapped = Bun.mmap("/etc/localtime", { shared: false });
  return Buffer.from(mapped.buffer, mapped.byteOffset, mapped.byteLength);
}

/**
 * A TZif file's offset when the zone never changes it (no transitions, one local time type, and from
 * version 2 on a footer TZ string without a daylight saving rule); null otherwise.
 */
export function tzifFixedOffsetMs(file: Buffer): number | null {
  if (file.length < 44 || file.toString("latin1", 0, 4) !== "TZif") return null;
  const version = file[4]!;
  let header = 0;
  // Version 2+ repeats the data with 64-bit times after the version 1 block: that block is the one to trust.
  let timeSize = 4;
  if (version >= 0x32) {
    header = 44 + blockSize(file, 0, 4);
    timeSize = 8;
    if (file.length < header + 44 || file.toString("latin1", header, header + 4) !== "TZif") return null;
  }
  const timecnt = file.readUInt32BE(header + 32);
  const typecnt = file.readUInt32BE(header + 36);
  if (timecnt !== 0 || typecnt !== 1) return null;
  const offsetSeconds = file.readInt32BE(header + 44);
  if (version >= 0x32) {
    // The footer (\n<TZ string>\n) says how times after the data go on: a ',' introduces a DST rule.
    const footerStart = header + 44 + blockSize(file, header, timeSize);
    const footer = file.toString("latin1", footerStart).trim();
    if (footer.includes(",")) return null;
  }
  return offsetSeconds * 1000;
}

/** The size of a TZif data block after its 44-byte header, with `timeSize`-byte transition times. */
function blockSize(file: Buffer, header: number, timeSize: number): number {
  const isutcnt = file.readUInt32BE(header + 20);
  const isstdcnt = file.readUInt32BE(header + 24);
  const leapcnt = file.readUInt32BE(header + 28);
  const timecnt = file.readUInt32BE(header + 32);
  const typecnt = file.readUInt32BE(header + 36);
  const charcnt = file.readUInt32BE(header + 40);
  return timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt;
}

const offsetMs = fixedUtcOffsetMs();

/** The local time now, as nats-server's log lines show it: `2006/01/02 15:04:05.000000`. */
export function logTimestamp(): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  if (offsetMs === null) {
    const d = new Date();
    const micros = String(d.getMilliseconds() * 1000).padStart(6, "0");
    return `${d.getFullYear()}/${p2(d.getMonth() + 1)}/${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${micros}`;
  }
  // UTC getters on a date shifted by the zone's fixed offset: the local wall clock.
  const d = new Date(Date.now() + offsetMs);
  const micros = String(d.getUTCMilliseconds() * 1000).padStart(6, "0");
  return `${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${micros}`;
}
