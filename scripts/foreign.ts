// How to run another platform's natter binary on this (x86-64 Debian) machine, for the platform smoke
// test (test/ops/platforms.test.ts) and scripts/device-figures.ts:
//   linux-arm64       under qemu-aarch64-static (qemu-user-static) with libc6-arm64-cross as the sysroot;
//   linux-x64-musl    with Debian's musl loader (package musl), plus Debian's glibc-built libstdc++ and
//                     libgcc_s made loadable by scripts/musl-glibc-shim.c (built here with musl-gcc, package
//                     musl-tools), since Debian has no libstdc++ built for musl;
//   linux-arm64-musl  not run: Debian has no aarch64 musl loader.
// .ci/run installs these packages; where one is missing the answer says which, and the tests skip.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, symlinkSync } from "node:fs";
import path from "node:path";
import { REPO, hostTarget, type Target } from "./build.ts";

export type Runner = { command: string[]; env?: NodeJS.ProcessEnv; how: string } | { skip: string };

const QEMU = "/usr/bin/qemu-aarch64-static";
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
const MUSL_LOADER = "/lib/ld-musl-x86_64.so.1";
const GLIBC_LIBS = "/usr/lib/x86_64-linux-gnu";
const SHIM_SOURCE = path.join(REPO, "scripts/musl-glibc-shim.c");

/** The command that runs `binary` (built for target) here, or why it cannot. */
export function runnerFor(target: Target, binary: string): Runner {
  if (target === hostTarget()) return { command: [binary], how: "natively" };
  if (target === "linux-arm64") {
    if (!existsSync(QEMU)) return { skip: "qemu-aarch64-static is missing (apt-get install qemu-user-static)" };
    if (!existsSync(path.join(ARM64_SYSROOT, "lib/ld-linux-aarch64.so.1"))) return { skip: `no aarch64 glibc under ${ARM64_SYSROOT} (apt-get install libc6-arm64-cross)` };
    return { command: [QEMU, "-L", ARM64_SYSROOT, binary], how: `under ${path.basename(QEMU)} -L ${ARM64_SYSROOT}` };
  }
  if (target === "linux-x64-musl") {
    if (!existsSync(MUSL_LOADER)) return { skip: `${MUSL_LOADER} is missing (apt-get install musl)` };
    const libs = muslCompatLibs();
    if ("skip" in libs) return libs;
    return {
      command: [MUSL_LOADER, "--library-path", libs.dir, binary],
      how: `with Debian's musl loader ${MUSL_LOADER}, Debian's glibc-built libstdc++/libgcc_s through scripts/musl-glibc-shim.c`,
    };
  }
  return { skip: `${target} binaries cannot run on this machine (Debian has no ${target.replace("linux-", "").replace("-musl", "")} musl loader)` };
}

/** A directory with libstdc++.so.6, libgcc_s.so.1 and the shim (as ld-linux-x86-64.so.2), built once under dist/. */
function muslCompatLibs(): { dir: string } | { skip: string } {
  const dir = path.join(REPO, "dist/musl-compat");
  const shim = path.join(dir, "ld-linux-x86-64.so.2");
  for (const lib of ["libstdc++.so.6", "libgcc_s.so.1"]) {
    if (!existsSync(path.join(GLIBC_LIBS, lib))) return { skip: `${GLIBC_LIBS}/${lib} is missing` };
  }
  if (existsSync(shim)) return { dir };
  if (spawnSync("musl-gcc", ["--version"]).error) return { skip: "musl-gcc is missing (apt-get install musl-tools)" };
  mkdirSync(dir, { recursive: true });
  const tmp = `${shim}.${process.pid}.tmp`;
  const r = spawnSync("musl-gcc", ["-shared", "-fPIC", "-O2", "-o", tmp, SHIM_SOURCE], { encoding: "utf8" });
  if (r.status !== 0) return { skip: `musl-gcc could not build ${SHIM_SOURCE}: ${r.stderr}` };
  for (const lib of ["libstdc++.so.6", "libgcc_s.so.1"]) {
    const link = path.join(dir, lib);
    if (!existsSync(link)) {
      try {
        symlinkSync(path.join(GLIBC_LIBS, lib), link);
      } catch {
        // another process made it first
      }
    }
  }
  renameSync(tmp, shim);
  return { dir };
}
