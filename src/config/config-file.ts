// Reading config files without node:fs and node:path.
//
// Bun builds the whole of a Node module when it is first imported, used or not, for the life of the
// process: node:fs and node:path took 2.8 MiB of idle RSS (33.5 → 36.3 MiB, bin/natter), and a config file
// was the only reason a server with a plain config (ports, websocket, limits) loaded them. A config names
// files (includes) only by path, so a read and a few lines of path arithmetic do; configs that name log,
// pid or TLS files still load node:fs where those are used (src/node-builtins.ts).
import { nodeFs } from "../node-builtins.ts";

/** A config file's text, as readFileSync(file, "utf8") gives it; throws errors with Node's `code`s. */
export function readConfigText(file: string): string {
  let bytes: Uint8Array;
  try {
    // A private copy-on-write mapping, decoded at once: the mapping is not kept.
    bytes = Bun.mmap(file, { shared: false });
  } catch (error) {
    // What cannot be mapped but can be read (an empty file, a pipe such as bash's <(...), /proc) is read
    // through node:fs; a file that is missing or not readable fails the same either way.
    if ((error as NodeJS.ErrnoException).code === "EINVAL") return nodeFs().readFileSync(file, "utf8");
    throw error;
  }
  return new TextDecoder().decode(bytes);
}

/** The file an `include` in `from` names: relative to the including file's directory, normalized. */
export function includedPath(from: string, name: string): string {
  return name.startsWith("/") ? name : normalizePath(`${directoryOf(from)}/${name}`);
}

/** An absolute, normalized path (path.resolve): how includes are told apart when looking for cycles. */
export function absolutePath(file: string): string {
  return normalizePath(file.startsWith("/") ? file : `${process.cwd()}/${file}`);
}

/** path.dirname for POSIX paths. */
function directoryOf(file: string): string {
  let end = file.length;
  while (end > 1 && file[end - 1] === "/") end--; // trailing slashes (no regular expression: see start-imports.test.ts)
  const trimmed = file.slice(0, end);
  const slash = trimmed.lastIndexOf("/");
  if (slash < 0) return ".";
  if (slash === 0) return "/";
  return trimmed.slice(0, slash);
}

/** path.normalize for POSIX paths: no empty or `.` segments, `..` taken back where it can be. */
function normalizePath(file: string): string {
  const absolute = file.startsWith("/");
  const out: string[] = [];
  for (const segment of file.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (segment === ".." && absolute) continue;
    else out.push(segment);
  }
  const joined = out.join("/");
  return absolute ? `/${joined}` : joined || ".";
}
