// Server output belongs in the test log only when a test fails: a passing run prints none of it (a
// newcomer reads `[ERR] Route protocol error` from a test that provokes it on purpose as a failure).
// Spawners (test/harness/server.ts, test/cluster/spawn.ts, …) keep their child's output and register it
// here; in-process servers log through testLogger(). When a test fails, the output of every server it
// started (or that its file started in a hook) is printed under the test's name.
import { beforeEach, onTestFailed } from "vitest";
import { Logger } from "../../src/log.ts";

/** At most this much of one server's output is printed (its end: where a failure shows). */
const PRINT_LIMIT = 64 * 1024;

interface Source {
  label: string;
  text: () => string;
}

/** Servers started outside a test (beforeAll, module level): shown when any test of the file fails. */
const fileSources = new Set<Source>();

beforeEach((context) => {
  context.onTestFailed(() => {
    for (const source of fileSources) print(source);
  });
});

function print(source: Source): void {
  const text = source.text();
  if (text.length === 0) return;
  const shown = text.length > PRINT_LIMIT ? `… (${text.length - PRINT_LIMIT} bytes before)\n${text.slice(-PRINT_LIMIT)}` : text;
  console.error(`--- output of ${source.label}:\n${shown}${shown.endsWith("\n") ? "" : "\n"}--- end of ${source.label}`);
}

/** Prints `text()` (a server's output so far) if the current test fails; outside a test, if any later test of the file fails. */
export function printOnFailure(label: string, text: () => string): void {
  const source: Source = { label, text };
  try {
    onTestFailed(() => print(source));
    return;
  } catch {
    // Not inside a test: started by a hook or at module level.
  }
  fileSources.add(source);
}

/**
 * A Logger for a server in the test process (`new Server(options, testLogger())`): its lines are kept, not
 * written, and printed only if the test fails.
 */
export function testLogger(debug = false, trace = false): Logger {
  let lines = "";
  const logger = new Logger(debug || trace, trace, (line) => {
    lines += line;
    if (lines.length > PRINT_LIMIT * 2) lines = lines.slice(-PRINT_LIMIT);
  });
  printOnFailure("the in-process server", () => lines);
  return logger;
}
