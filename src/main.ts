#!/usr/bin/env bun
// natter's entry point: options → Server → signals. Errors in flags or ports end with one
// line and exit code 1, never a stack trace.
import { OptionsError, parseCommandLine, usage, type ParsedCommandLine } from "./options.ts";
import { Logger } from "./log.ts";
import { COMPATIBLE_NATS_VERSION, NATTER_VERSION, Server } from "./server.ts";

function fail(message: string): never {
  process.stderr.write(`natter: ${message}\n`);
  process.exit(1);
}

let parsed: ParsedCommandLine;
try {
  parsed = parseCommandLine(process.argv.slice(2));
} catch (error) {
  if (error instanceof OptionsError) fail(`${error.message} (see --help)`);
  throw error;
}

if (parsed.kind === "help") {
  process.stdout.write(`${usage()}\n`);
  process.exit(0);
}
if (parsed.kind === "version") {
  process.stdout.write(`natter: v${NATTER_VERSION} (speaks nats-server ${COMPATIBLE_NATS_VERSION})\n`);
  process.exit(0);
}

const options = parsed.options;
const log = new Logger(options.debug || options.trace, options.trace);
const server = new Server(options, log);
// Signal handlers go in before the listeners open: a signal right after "Server is ready" must be graceful.
let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(`Trapped "${signal}" signal`);
  await server.shutdown();
  // Let the event loop write the last bytes before exiting.
  setTimeout(() => process.exit(0), 50);
}
process.on("SIGINT", () => void stop("interrupt"));
process.on("SIGTERM", () => void stop("terminated"));

try {
  server.start();
} catch (error) {
  const e = error as NodeJS.ErrnoException;
  const what = e.code === "EADDRINUSE" ? "address already in use" : e.message;
  fail(`cannot listen: ${what}`);
}


