// The few libc calls natter makes, through bun:ffi: madvise (src/start-up-pages.ts), setpriority and the
// listing of this process's threads (src/compiler-threads.ts). One dlopen for all: bun:ffi compiles a small
// trampoline per library it opens (TinyCC: pages of Bun's executable that only this runs), so the first use,
// at start, pays for all of them and the start-up give-back then drops those pages again. The listing is libc's too because
// Bun's own (Bun.Glob) pages in ~3.6 MiB of Bun's executable again after a give-back, node:fs ~2, and making
// strings of the names ~1: this reads the names' digits where readdir left them.
import type { Pointer } from "bun:ffi";

export interface Libc {
  madvise(address: bigint, length: bigint, advice: number): number;
  setpriority(which: number, who: number, prio: number): number;
  /** This process's thread ids (the entries of /proc/self/task); null if they cannot be read. */
  threadIds(): number[] | null;
}

/** Where d_name starts in struct dirent: after d_ino (8), d_off (8), d_reclen (2) and d_type (1), in glibc and musl on 64-bit Linux. */
const DIRENT_NAME_OFFSET = 19;

let libc: Promise<Libc | null> | null = null;

/** libc, loaded at the first call; null where there is none to call (not 64-bit Linux, no bun:ffi, no libc found). */
export function loadLibc(): Promise<Libc | null> {
  libc ??= openLibc();
  return libc;
}

async function openLibc(): Promise<Libc | null> {
  if (process.platform !== "linux" || (process.arch !== "x64" && process.arch !== "arm64")) return null;
  try {
    const { dlopen, FFIType, read } = await import("bun:ffi");
    const taskDirectory = Buffer.from("/proc/self/task\0", "latin1");
    for (const name of ["libc.so.6", "libc.so"]) {
      let symbols;
      try {
        ({ symbols } = dlopen(name, {
          madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
          setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
          opendir: { args: [FFIType.ptr], returns: FFIType.ptr },
          readdir: { args: [FFIType.ptr], returns: FFIType.ptr },
          closedir: { args: [FFIType.ptr], returns: FFIType.i32 },
        }));
      } catch {
        continue; // not this name (glibc: libc.so.6; musl: libc.so)
      }
      const { opendir, readdir, closedir } = symbols;
      return {
        madvise: symbols.madvise as Libc["madvise"],
        setpriority: symbols.setpriority as Libc["setpriority"],
        threadIds(): number[] | null {
          const dir = opendir(taskDirectory) as Pointer | null;
          if (!dir) return null;
          const ids: number[] = [];
          try {
            for (let entry = readdir(dir) as Pointer | null; entry; entry = readdir(dir) as Pointer | null) {
              // The name's digits read as a number in place: no string made (". and .." read as nothing).
              let id = 0;
              for (let at = DIRENT_NAME_OFFSET, digit = read.u8(entry, at); digit !== 0; digit = read.u8(entry, ++at)) id = id * 10 + digit - 48;
              if (id > 0) ids.push(id);
            }
          } finally {
            closedir(dir);
          }
          return ids;
        },
      };
    }
  } catch {
    // no bun:ffi in this build
  }
  return null;
}
