// Running natter as an operated process, as nats-server is run: the pid file (-P), the ports file
// (--ports_file_dir), config reload (SIGHUP), log reopen (SIGUSR1), lame duck mode (SIGUSR2), and
// `--signal <command>[=<pid>]` to send those signals to a running server.
import { nodeFs, nodeOs, nodePath } from "../node-builtins.ts";
import type { Options } from "../options.ts";
import type { Server } from "../server.ts";
import type { Logger } from "../log.ts";
import { infoFrame } from "../protocol/frames.ts";
import { CloseReason } from "../protocol/errors.ts";

/** The executable's name for `<exe>_<pid>.ports`: the compiled binary's name, or "natter" when run by bun. */
export function executableName(): string {
  const exe = process.execPath.slice(process.execPath.lastIndexOf("/") + 1);
  return /^(bun|node)(\.exe)?$/.test(exe) ? "natter" : exe;
}

/** The URLs a listener answers on; a wildcard bind address stands for every local interface address (as nats-server lists them). */
export function listenerUrls(scheme: string, host: string, port: number): string[] {
  const join = (h: string) => (h.includes(":") ? `${scheme}://[${h}]:${port}` : `${scheme}://${h}:${port}`);
  if (host !== "" && host !== "0.0.0.0" && host !== "::") return [join(host)];
  const urls: string[] = [];
  for (const addresses of Object.values(nodeOs().networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (host === "0.0.0.0" && a.family !== "IPv4") continue;
      urls.push(join(a.address));
    }
  }
  return urls;
}

export class Lifecycle {
  private portsFile = "";
  private lameDuck = false;

  constructor(
    private readonly server: Server,
    private readonly log: Logger,
    /** The command-line flags: they win over the config file on every reload too. */
    private readonly flagged: Partial<Options>,
  ) {}

  get inLameDuckMode(): boolean {
    return this.lameDuck;
  }

  /** After the listeners opened: the pid and ports files. */
  started(): void {
    this.writePidFile();
    this.writePortsFile();
  }

  /** At exit: the ports file goes (the pid file stays, as nats-server leaves it). Safe to call twice. */
  cleanup(): void {
    this.removePortsFile();
  }

  writePidFile(): void {
    const file = this.server.options.pidFile;
    if (!file) return;
    try {
      writeAtomically(file, String(process.pid), 0o660);
    } catch (error) {
      this.log.error(`Failed to write pidfile: ${(error as Error).message}`);
    }
  }

  /** `{"nats":[…],"monitoring":[…],"cluster":[…],"websocket":[…]}` in `<dir>/<exe>_<pid>.ports`, as nats-server writes it. */
  writePortsFile(): void {
    const s = this.server;
    const o = s.options;
    if (!o.portsFileDir) return;
    const ports: Record<string, string[]> = { nats: listenerUrls("nats", o.host, s.port) };
    if (o.httpPort !== 0) ports.monitoring = listenerUrls("http", o.httpHost || o.host, s.httpPort);
    if (o.httpsPort !== 0) ports.monitoring = listenerUrls("https", o.httpHost || o.host, s.httpsPort);
    if (s.cluster !== null) ports.cluster = listenerUrls("nats", o.clusterHost, s.cluster.port);
    if (o.wsPort !== 0) ports.websocket = listenerUrls("ws", o.wsHost, s.wsPort);
    const file = nodePath().join(o.portsFileDir, `${executableName()}_${process.pid}.ports`);
    try {
      writeAtomically(file, JSON.stringify(ports), 0o666);
      this.portsFile = file;
    } catch (error) {
      this.log.error(`Error writing ports file (${file}): ${(error as Error).message}`);
    }
  }

  removePortsFile(): void {
    if (!this.portsFile) return;
    const file = this.portsFile;
    this.portsFile = "";
    try {
      nodeFs().unlinkSync(file);
    } catch (error) {
      this.log.error(`Error cleaning up ports file ${file}: ${(error as Error).message}`);
    }
  }

  /**
   * SIGHUP. The reloader (with the config file reader) is loaded at the first reload, not at start: a
   * server that is never reloaded does not carry it (issue 20, idle RSS).
   */
  async reload(): Promise<void> {
    const { reloadConfig } = await import("./reload.ts");
    const ok = reloadConfig(this.server, this.log, this.flagged, {
      pidFileChanged: () => this.writePidFile(),
      portsFileDirChanged: () => {
        this.removePortsFile();
        this.writePortsFile();
      },
    });
    this.server.events?.adminOperation("config_reload", { ok });
  }

  /** SIGUSR1: reopen the log file (after rotation). */
  reopenLog(): void {
    try {
      this.log.reopen();
      this.log.info("File log re-opened");
    } catch (error) {
      process.stderr.write(`natter: cannot reopen log file: ${(error as Error).message}\n`);
    }
  }

  /**
   * SIGUSR2, lame duck mode (as nats-server): the listeners close at once; clients that speak protocol 1
   * get an INFO with "ldm":true (so they can reconnect elsewhere); after lame_duck_grace_period the
   * clients are closed one by one, spread over the rest of lame_duck_duration (at most 1 s apart);
   * then `done` (which shuts the server down and exits 0).
   */
  enterLameDuckMode(done: () => void): void {
    const s = this.server;
    if (this.lameDuck || s.isShuttingDown) return;
    this.lameDuck = true;
    s.events?.adminOperation("lame_duck");
    this.log.info("Entering lame duck mode, stop accepting new clients");
    s.stopListening();
    const clients = [...s.connections.values()];
    if (clients.length === 0) {
      done();
      return;
    }
    for (const conn of clients) {
      if (conn.closed || !conn.connectReceived || conn.protocol < 1) continue;
      conn.queueBytes(infoFrame({ ...s.infoFor(conn), ldm: true }));
    }
    s.flushDirty();
    const o = s.options;
    const grace = Math.max(0, o.lameDuckGracePeriodMs);
    let spread = o.lameDuckDurationMs - grace;
    if (spread <= 0) spread = 1000;
    let interval = spread / clients.length;
    let batch = 1;
    if (interval < 1) {
      interval = 1;
      batch = Math.max(1, Math.floor(clients.length / spread));
    } else if (interval > 1000) interval = 1000;
    const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    void (async () => {
      await sleep(grace);
      if (s.isShuttingDown) return;
      this.log.info("Closing existing clients");
      for (let i = 0; i < clients.length; i++) {
        if (s.isShuttingDown) return;
        const conn = clients[i]!;
        if (!conn.closed) conn.close(CloseReason.ServerShutdown, null);
        if (i === clients.length - 1) break;
        if (batch === 1 || i % batch === 0) await sleep(Math.max(interval / 2, Math.random() * interval));
      }
      done();
    })();
  }
}

const SIGNALS: Record<string, NodeJS.Signals> = {
  ldm: "SIGUSR2",
  stop: "SIGKILL",
  quit: "SIGINT",
  term: "SIGTERM",
  reopen: "SIGUSR1",
  reload: "SIGHUP",
};

/**
 * `--signal <command>[=<pid>]`: <pid> is a process id or a pid file. Without one, the single running
 * process named like this executable is signalled (found with pgrep, as nats-server does).
 * Throws with a one-line reason.
 */
export function sendSignal(spec: string): void {
  const parts = spec.split("=");
  if (parts.length > 2) throw new Error(`invalid signal parameters: [${parts.slice(2).join(" ")}]`);
  const command = parts[0]!;
  const signal = SIGNALS[command];
  if (!signal) throw new Error(`unknown signal "${command}"`);
  let pids: number[];
  if (parts.length === 2) {
    let text = parts[1]!;
    // A pid file, if such a file exists; else the text is the pid.
    if (nodeFs().existsSync(text)) {
      try {
        text = nodeFs().readFileSync(text, "utf8");
      } catch {
        // not readable: take the text as it is
      }
    }
    text = text.trim();
    if (!/^\d+$/.test(text)) throw new Error(`invalid pid: ${text}`);
    pids = [Number(text)];
  } else {
    pids = findProcesses(executableName());
    if (pids.length === 0) throw new Error(`no ${executableName()} processes running`);
    if (pids.length > 1) throw new Error(`multiple ${executableName()} processes running: ${pids.join(", ")}`);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      throw new Error(`signal "${command}" ${pid}: ${(error as NodeJS.ErrnoException).code === "ESRCH" ? "no such process" : (error as Error).message}`);
    }
  }
}

function findProcesses(name: string): number[] {
  let result: ReturnType<typeof Bun.spawnSync>;
  try {
    result = Bun.spawnSync(["pgrep", "-x", name]);
  } catch {
    throw new Error("unable to resolve pid, try providing one");
  }
  if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error("unable to resolve pid, try providing one");
  const pids = (result.stdout ?? "")
    .toString()
    .split("\n")
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number)
    .filter((pid) => pid !== process.pid);
  // The workers of `--procs` (src/workers/) are the supervisor's children: the supervisor stands for them.
  return pids.filter((pid) => !pids.includes(parentPid(pid)));
}

function parentPid(pid: number): number {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
    const stat = nodeFs().readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return 0;
  }
}

/** Writes a file whole or not at all (temp file, then rename): a reader never sees it half-written. */
export function writeAtomically(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  nodeFs().writeFileSync(temporary, content, { mode });
  nodeFs().renameSync(temporary, file);
}
