// Giving back the pages of Bun's executable that only start-up ran (issue 20: idle RSS).
//
// Starting a Bun process runs a great deal of Bun's own machine code once: the runtime's set-up, the
// transpiler and module loader that read our bundle, the parts of JavaScriptCore that build the first
// objects. Those pages of the executable stay mapped and resident for the life of the process although
// nothing runs them again: measured on this machine, 21 MiB of an idle natter's 33 MiB of RSS was the
// executable's code, and 5 MiB more its read-only data. nats-server, a Go binary a tenth of Bun's size,
// holds ~11 MiB in all.
//
// These pages are clean copies of the file: the kernel would drop them under memory pressure, and a page
// that is needed again is read back from the page cache (a minor fault, no disk read while the file is
// cached). So once the server is ready, and again after the hot-path warm-up has compiled its code, natter
// asks the kernel to drop them now (madvise MADV_DONTNEED over the executable's read-only mappings); what
// the server runs from then on comes back as it runs, and RSS then counts what natter uses.
//
// Only mappings of the executable that are not writable and hold no private (changed) page are given
// back: dropping a private page would lose its contents (relocations written before a segment was made
// read-only), and a clean one only costs its refault. Where that cannot be done (no /proc, no libc to
// call, qemu-user which ignores madvise) nothing happens; NATTER_KEEP_START_UP_PAGES=1 turns it off.
import type { Logger } from "./log.ts";
import { loadLibc } from "./libc.ts";

const MADV_DONTNEED = 4;

/** A mapping of /proc/self/smaps: its address range, permissions, file and private pages. */
export interface Mapping {
  start: bigint;
  end: bigint;
  permissions: string;
  path: string;
  /** KiB resident now. */
  rssKiB: number;
  /** KiB of pages this process changed or made (Anonymous, Private_Dirty): pages that cannot be read back from the file. */
  privateKiB: number;
}

/**
 * The mappings of a /proc/<pid>/smaps text. Read without regular expressions: a plain start runs none (the
 * engine's regexp compiler would page in for this alone; test/core/start-imports.test.ts).
 */
export function parseSmaps(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  let current: Mapping | null = null;
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    const space = line.indexOf(" ");
    if (space > 0 && (colon < 0 || colon > space)) {
      // "start-end perms offset dev inode   path": a mapping's first line (a field line has its colon first)
      const fields = line.split(" ").filter((f) => f !== "");
      const dash = fields[0]!.indexOf("-");
      if (dash < 0 || fields.length < 5) continue;
      current = {
        start: BigInt(`0x${fields[0]!.slice(0, dash)}`),
        end: BigInt(`0x${fields[0]!.slice(dash + 1)}`),
        permissions: fields[1]!,
        path: fields.slice(5).join(" "),
        rssKiB: 0,
        privateKiB: 0,
      };
      mappings.push(current);
      continue;
    }
    if (current === null || colon < 0) continue;
    const name = line.slice(0, colon);
    if (name !== "Rss" && name !== "Anonymous" && name !== "Private_Dirty") continue;
    const kib = Number.parseInt(line.slice(colon + 1), 10);
    if (name === "Rss") current.rssKiB = kib;
    else current.privateKiB = Math.max(current.privateKiB, kib);
  }
  return mappings;
}

/** The executable's mappings whose resident pages are all clean copies of the file: safe to drop. */
export function droppableMappings(mappings: Mapping[], executable: string): Mapping[] {
  return mappings.filter((m) => m.path === executable && m.permissions[1] === "-" && m.privateKiB === 0 && m.rssKiB > 0);
}

/** The executable's droppable ranges, found once at start (reading smaps walks every mapping: ~9 ms, too long for later). */
let droppable: Promise<Mapping[]> | null = null;

async function findDroppable(): Promise<Mapping[]> {
  try {
    return droppableMappings(parseSmaps(await Bun.file("/proc/self/smaps").text()), process.execPath);
  } catch {
    return [];
  }
}

/**
 * Drops the executable's clean resident pages; resolves to the KiB those mappings held at start (0 where nothing
 * could be done). The first call (at start, before clients) finds the mappings; a later one (after the warm-up)
 * only calls madvise over them again: under a millisecond, a refault per page that is used again.
 * A mapping that was clean at start stays clean: it is read-only.
 */
export async function giveBackStartUpPages(log?: Logger): Promise<number> {
  if (process.env.NATTER_KEEP_START_UP_PAGES === "1") return 0;
  const libc = await loadLibc();
  if (libc === null) return 0;
  droppable ??= findDroppable();
  let given = 0;
  for (const m of await droppable) {
    if (libc.madvise(m.start, m.end - m.start, MADV_DONTNEED) === 0) given += m.rssKiB;
  }
  if (given > 0) log?.debug(`Gave back the executable's resident pages (${(given / 1024).toFixed(1)} MiB at start; they come back as they run)`);
  return given;
}
