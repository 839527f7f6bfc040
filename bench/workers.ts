// natter --procs (src/workers/) in a bench: waiting until every worker listens, and finding their pids.
import { execSync } from "node:child_process";
import net from "node:net";

/** Connects until `n` different INFO server_ids have answered on `port` (every worker is listening). */
export async function waitForWorkers(port: number, n: number): Promise<void> {
  const ids = new Set<string>();
  const deadline = Date.now() + 15_000;
  while (ids.size < n) {
    if (Date.now() > deadline) throw new Error(`only ${ids.size} of ${n} workers answered on port ${port}`);
    const id = await new Promise<string>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      let got = "";
      s.on("data", (d) => {
        got += d.toString("latin1");
        const m = /"server_id":"([^"]+)"/.exec(got);
        if (m) {
          s.destroy();
          resolve(m[1]!);
        }
      });
      s.on("error", () => resolve(""));
    });
    if (id) ids.add(id);
  }
}

/** The worker processes of a `natter --procs` supervisor. */
export function childPids(pid: number): number[] {
  try {
    return execSync(`pgrep -P ${pid}`).toString().split("\n").filter((l) => /^\d+$/.test(l)).map(Number);
  } catch {
    return [];
  }
}
