// Giving back the executable's pages that only start-up ran (src/start-up-pages.ts, issue 20: idle RSS).
// natter only: nats-server is a Go binary with nothing of the kind to give back.
import { readFileSync, readlinkSync } from "node:fs";
import { expect, test } from "vitest";
import { connectReady, waitFor } from "../harness/raw.ts";
import { serverKind, startServer } from "../harness/server.ts";
import { droppableMappings, parseSmaps } from "../../src/start-up-pages.ts";

const SMAPS = `00400000-00600000 r--p 00000000 fe:00 53                                 /opt/bun/bun
Size:               2048 kB
Rss:                1024 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
00600000-00a00000 r-xp 00200000 fe:00 53                                 /opt/bun/bun
Size:               4096 kB
Rss:                3000 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
00a00000-00a40000 r--p 00600000 fe:00 53                                 /opt/bun/bun
Rss:                 256 kB
Private_Dirty:        12 kB
Anonymous:            12 kB
00a40000-00a80000 rw-p 00640000 fe:00 53                                 /opt/bun/bun
Rss:                 256 kB
Anonymous:           256 kB
00b00000-00b40000 r-xp 00000000 fe:00 99                                 /usr/lib/libc.so.6
Rss:                 200 kB
Anonymous:             0 kB
00c00000-00c40000 r--p 00000000 fe:00 53                                 /opt/bun/bun
Rss:                   0 kB
Anonymous:             0 kB
7ffd0000-7ffd2000 rw-p 00000000 00:00 0                                  [stack]
Rss:                   8 kB
Anonymous:             8 kB
`;

test("only the executable's read-only mappings whose resident pages are all clean copies of the file are given back", () => {
  const mappings = parseSmaps(SMAPS);
  expect(mappings.map((m) => [m.permissions, m.path, m.rssKiB, m.privateKiB])).toEqual([
    ["r--p", "/opt/bun/bun", 1024, 0],
    ["r-xp", "/opt/bun/bun", 3000, 0],
    ["r--p", "/opt/bun/bun", 256, 12],
    ["rw-p", "/opt/bun/bun", 256, 256],
    ["r-xp", "/usr/lib/libc.so.6", 200, 0],
    ["r--p", "/opt/bun/bun", 0, 0],
    ["rw-p", "[stack]", 8, 8],
  ]);
  // Not the relocated data made read-only after start (private pages), not the writable data, not other
  // files, not a mapping with nothing resident.
  expect(droppableMappings(mappings, "/opt/bun/bun").map((m) => [m.start.toString(16), m.end.toString(16)])).toEqual([
    ["400000", "600000"],
    ["600000", "a00000"],
  ]);
});

/** KiB of the process's executable that are resident now. */
function executableResidentKiB(pid: number): number {
  const executable = readlinkSync(`/proc/${pid}/exe`);
  return parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"))
    .filter((m) => m.path === executable)
    .reduce((sum, m) => sum + m.rssKiB, 0);
}

/** A natter started with NATTER_KEEP_START_UP_PAGES set as given (the child inherits the environment). */
async function startWith(keep: boolean) {
  const saved = process.env.NATTER_KEEP_START_UP_PAGES;
  process.env.NATTER_KEEP_START_UP_PAGES = keep ? "1" : "0";
  try {
    return await startServer({ debug: true });
  } finally {
    if (saved === undefined) delete process.env.NATTER_KEEP_START_UP_PAGES;
    else process.env.NATTER_KEEP_START_UP_PAGES = saved;
  }
}

test.skipIf(serverKind !== "natter" || process.platform !== "linux")(
  "a started server holds fewer of its executable's pages, and serves as before once they are given back",
  async () => {
    // The same start with the pages kept: what the executable holds without the give-back.
    const keeping = await startWith(true);
    let kept: number;
    try {
      kept = executableResidentKiB(keeping.pid);
    } finally {
      await keeping.stop();
    }
    const server = await startWith(false);
    try {
      await waitFor(() => server.log().includes("Gave back the executable's resident pages"), 15_000, "the give-back's log line");
      // On x64: ~28 MiB kept; ~16 MiB with the give-back, what the harness's probe connection paged in again
      // included (a connection runs code start-up did not).
      expect(executableResidentKiB(server.pid)).toBeLessThan(kept * 0.8);

      // Everything natter runs from here is paged in again as it runs.
      const sub = await connectReady(server.port);
      sub.send("SUB pages.test 1\r\n");
      expect(await sub.flush()).toEqual([]);
      const pub = await connectReady(server.port);
      pub.send("PUB pages.test 5\r\nhello\r\n");
      expect(await pub.flush()).toEqual([]);
      const msg = await sub.next();
      expect([msg.op, msg.subject, msg.payload?.toString()]).toEqual(["MSG", "pages.test", "hello"]);
      sub.close();
      pub.close();
    } finally {
      await server.stop();
    }
  },
);
