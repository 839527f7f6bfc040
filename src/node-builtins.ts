// node:fs, node:os and node:path, loaded at their first use (issue 20: idle RSS).
//
// Importing one of Bun's Node modules builds all of it, used or not, for the life of the process:
// measured in a bare Bun process, node:fs alone takes RSS 25.8 → 29.5 MiB, node:path 27.6, node:os 26.7,
// the three 29.2. A plain server needs none of them: it logs with console.error (src/log.ts), reads the
// time zone with Bun.mmap (src/local-time.ts) and its config file with src/config/config-file.ts, and
// only a configuration that names another kind of file (a log, pid, ports or audit file, TLS
// certificates, credentials) or asks for /varz reads the host through these. Modules that a plain server loads take them from here instead of importing them.
import type * as Fs from "node:fs";
import type * as Os from "node:os";
import type * as Path from "node:path";

/** node:fs, loaded now if it was not. */
export function nodeFs(): typeof Fs {
  return process.getBuiltinModule("node:fs");
}

/** node:os, loaded now if it was not. */
export function nodeOs(): typeof Os {
  return process.getBuiltinModule("node:os");
}

/** node:path, loaded now if it was not. */
export function nodePath(): typeof Path.posix {
  return process.getBuiltinModule("node:path");
}
