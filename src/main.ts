#!/usr/bin/env bun
// natter's entry point: options → Server → signals. Errors in flags or ports end with one
// line and exit code 1, never a stack trace.
//
// Start-up time and idle RSS are mostly module loading: what a configuration may not use (the config-file
// reader, JetStream, the --procs supervisor and worker side, the benchmark client, and the cluster, leaf
// nodes, MQTT and the monitor of src/optional-modules.ts) is imported where it is used.
import { OptionsError, parseCommandLine, usage, type Options, type ParsedCommandLine } from "./options.ts";
import { failStart as fail, loggerFor } from "./log.ts";
import { COMPATIBLE_NATS_VERSION, NATTER_VERSION, Server } from "./server.ts";
import { Lifecycle, sendSignal } from "./config/lifecycle.ts";
import type { JetStream } from "./jetstream/jetstream.ts";
import { ListenError } from "./transport/listen-error.ts";
import { ownShare, workerIndex } from "./workers/worker.ts";
import { loadOptionalModules } from "./optional-modules.ts";
import { warmUpHotPath } from "./warm-up.ts";
import { giveBackStartUpPages } from "./start-up-pages.ts";
import { lowerCompilerThreadPriority } from "./compiler-threads.ts";

/** Set by scripts/build.ts (bun build --define) in a binary: the platform it was built for, e.g. linux-arm64-musl. */
declare const NATTER_BUILD_PLATFORM: string | undefined;

/** The platform `natter -v` names: the binary's build target, or the running Bun's when run from the sources. */
function platform(): string {
  return typeof NATTER_BUILD_PLATFORM === "string" ? NATTER_BUILD_PLATFORM : `${process.platform}-${process.arch}`;
}

/** `natter --healthcheck URL`: 0 when the URL answers 200 within 5 s; otherwise one line on stderr and 1. */
async function healthcheck(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const body = await res.text();
    if (res.status === 200) return 0;
    process.stderr.write(`natter: ${url}: HTTP ${res.status} ${body.trim()}\n`);
  } catch (error) {
    process.stderr.write(`natter: ${url}: ${(error as Error).message}\n`);
  }
  return 1;
}

// `natter bench …`: the benchmark client (src/bench/), with its own flags.
if (process.argv[2] === "bench") {
  const { benchMain } = await import("./bench/cli.ts");
  process.exit(await benchMain(process.argv.slice(3)));
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
  process.stdout.write(`natter: v${NATTER_VERSION} (speaks nats-server ${COMPATIBLE_NATS_VERSION}) ${platform()}\n`);
  process.exit(0);
}
if (parsed.kind === "healthcheck") process.exit(await healthcheck(parsed.url));

if (parsed.kind === "signal") {
  try {
    sendSignal(parsed.signal);
  } catch (error) {
    fail((error as Error).message);
  }
  process.exit(0);
}

// A config file (-c): its settings, with the flags laid over them. Errors: `natter: <file>:<line>:<col>: …`, exit 1.
let options: Options = parsed.options;
if (options.configFile) {
  const { ConfigError, ConfigErrors } = await import("./config/parser.ts");
  const { loadOptions } = await import("./config/load.ts");
  try {
    const loaded = loadOptions(options.configFile, parsed.flagged);
    for (const warning of loaded.warnings) process.stderr.write(`${warning}\n`);
    options = loaded.options;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ConfigErrors || error instanceof OptionsError) fail(error.message);
    throw error;
  }
  if (parsed.checkConfig) {
    process.stderr.write(`natter: configuration file ${options.configFile} is valid\n`);
    process.exit(0);
  }
}

// --procs N (src/workers/): this process supervises N workers, each an ordinary natter on the same port.
const worker = workerIndex();
if (worker !== null) ownShare(options);
if (options.procs > 1 && worker === null) await (await import("./workers/supervisor.ts")).superviseWorkers(options, process.argv.slice(2));
const jetstreamModule = options.jetstream ? await import("./jetstream/start.ts") : null;
// The cluster, leaf nodes, MQTT, the monitor…: loaded only when the configuration uses them (src/optional-modules.ts).
await loadOptionalModules(options);

const log = loggerFor(options);
const server = new Server(options, log);
const lifecycle = new Lifecycle(server, log, parsed.flagged);
process.on("exit", () => lifecycle.cleanup());
// Signal handlers go in before the listeners open: a signal right after "Server is ready" must be graceful.
let jetstream: JetStream | null = null;
let stopping = false;
async function stop(signal: string | null): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (signal) log.info(`Trapped "${signal}" signal`);
  jetstream?.shutdown();
  await server.shutdown();
  lifecycle.cleanup();
  // Let the event loop write the last bytes before exiting.
  setTimeout(() => process.exit(0), 50);
}
process.on("SIGINT", () => void stop("interrupt"));
// As nats-server: SIGTERM does not cut a lame duck mode short (SIGINT does).
process.on("SIGTERM", () => {
  if (lifecycle.inLameDuckMode) log.info(`Trapped "terminated" signal: lame duck mode in progress, ignored`);
  else void stop("terminated");
});
process.on("SIGHUP", () => {
  log.debug(`Trapped "hangup" signal`);
  void lifecycle.reload();
});
process.on("SIGUSR1", () => lifecycle.reopenLog());
process.on("SIGUSR2", () => lifecycle.enterLameDuckMode(() => void stop(null)));

// Ports first: one taken ends the start with nats-server's line naming the listener and its address
// (src/transport/listen-error.ts), before anything is logged or JetStream touches its store.
const startFailure = (error: unknown) => fail(error instanceof ListenError ? error.message : `cannot start: ${(error as Error).message}`);
try {
  server.listen();
} catch (error) {
  startFailure(error);
}
// The stream layer subscribes before clients are accepted (from the next event-loop turn): a client that
// sees INFO can use $JS.API at once.
try {
  jetstream = jetstreamModule?.startJetStream(server) ?? null;
} catch (error) {
  fail(`cannot start JetStream: ${(error as Error).message}`);
}
try {
  server.start();
} catch (error) {
  startFailure(error);
}
// In a cluster, the JetStream nodes form one JetStream (src/jetstream/cluster).
if (jetstream !== null && server.cluster !== null) jetstream.joinCluster(server.cluster);
lifecycle.started();
// The executable's pages that only start-up ran go back to the kernel (src/start-up-pages.ts), and again after the warm-up.
void giveBackStartUpPages(log);
// When a client first subscribes, the JIT compiles the hot path on synthetic traffic, rather than on the clients'
// messages (src/warm-up.ts); a server nobody subscribes to (idle, or only probed by health checks) does not pay its memory.
server.onFirstSubscription = () =>
  warmUpHotPath(server, () => {
    // The compiler threads' lower priority (src/compiler-threads.ts) first: what finding them pages in is then given back too.
    void lowerCompilerThreadPriority(log).then(() => giveBackStartUpPages(log));
  });
if (worker !== null) (await import("./workers/worker.ts")).workerStarted(server, () => void stop(null));
