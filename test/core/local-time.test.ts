// Log timestamps without Date's local-time getters where the zone has a fixed offset (src/local-time.ts).
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { fixedUtcOffsetMs, tzifFixedOffsetMs } from "../../src/local-time.ts";

const zone = (name: string) => readFileSync(`/usr/share/zoneinfo/${name}`);
const haveZones = (() => {
  try {
    zone("Europe/Berlin");
    return true;
  } catch {
    return false;
  }
})();

test.skipIf(!haveZones)("a TZif zone without transitions gives its fixed offset; a zone with transitions gives null", () => {
  expect(tzifFixedOffsetMs(zone("Etc/UTC"))).toBe(0);
  expect(tzifFixedOffsetMs(zone("Etc/GMT-3"))).toBe(3 * 3_600_000);
  expect(tzifFixedOffsetMs(zone("Etc/GMT+5"))).toBe(-5 * 3_600_000);
  for (const name of ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"]) expect(tzifFixedOffsetMs(zone(name))).toBeNull();
});

test("TZ: UTC names are offset 0, any other value is left to Date; no /etc/localtime is UTC", () => {
  const unreadable = () => {
    throw new Error("ENOENT");
  };
  for (const tz of ["", "UTC", ":UTC", "Etc/UTC", "UTC0", "GMT"]) expect(fixedUtcOffsetMs(tz, unreadable)).toBe(0);
  for (const tz of ["Europe/Berlin", "EST5EDT", "CET-1CEST,M3.5.0,M10.5.0/3"]) expect(fixedUtcOffsetMs(tz, unreadable)).toBeNull();
  expect(fixedUtcOffsetMs(undefined, unreadable)).toBe(0);
  expect(fixedUtcOffsetMs(undefined, () => Buffer.from("not a zone file at all, long enough to have a header......"))).toBeNull();
});

test.skipIf(!haveZones)("the log's wall clock equals Date's local time in the zone the process runs in", () => {
  const offset = fixedUtcOffsetMs();
  if (offset === null) return; // a zone with transitions: Date's own local time is used
  const now = Date.now();
  const shifted = new Date(now + offset);
  const local = new Date(now);
  expect([shifted.getUTCHours(), shifted.getUTCMinutes(), shifted.getUTCDate()]).toEqual([local.getHours(), local.getMinutes(), local.getDate()]);
});
