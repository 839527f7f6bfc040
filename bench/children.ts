// Every child process still running (servers, load generator), so that an interrupted bench
// leaves nothing behind.
interface Killable {
  kill(signal?: number | NodeJS.Signals): void;
}

const live = new Set<Killable>();

export function track(p: Killable): void {
  live.add(p);
}

export function untrack(p: Killable): void {
  live.delete(p);
}

export function killAll(): void {
  for (const p of live) p.kill("SIGKILL");
  live.clear();
}

/** An interrupted or finished script leaves no child behind: Ctrl-C and SIGTERM kill them all and exit 130. */
export function killChildrenOnExit(): void {
  const interrupted = () => {
    killAll();
    process.exit(130);
  };
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  process.on("exit", killAll);
}
