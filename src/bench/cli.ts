// `natter bench …`: src/main.ts hands over argv after "bench". Returns the exit status: 0, or 1 after an
// error (one line on stderr) or a run that lost messages or requests. A Worker started by the bench runs the
// same entry point and lands here too: it serves its jobs and never returns.

import { writeFileSync } from "node:fs";
import { workerMain } from "./clients.ts";
import { BenchError } from "./conn.ts";
import { benchUsage, parseBenchArgs, type ParsedBench } from "./flags.ts";
import { Progress } from "./progress.ts";
import { csvReport, jsonReport, textReport } from "./report.ts";
import { runBench } from "./run.ts";

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(text)) resolve();
    else stream.once("drain", () => resolve());
  });
}

async function fail(message: string): Promise<number> {
  await write(process.stderr, `natter bench: ${message.split("\n")[0]}\n`);
  return 1;
}

export async function benchMain(argv: string[]): Promise<number> {
  if (!Bun.isMainThread) {
    workerMain();
    return new Promise<number>(() => {});
  }
  let parsed: ParsedBench;
  try {
    parsed = parseBenchArgs(argv);
  } catch (error) {
    if (error instanceof BenchError) return fail(error.message);
    throw error;
  }
  if (parsed.kind === "help") {
    await write(process.stdout, `${benchUsage()}\n`);
    return 0;
  }
  const o = parsed.options;
  try {
    const result = await runBench(o, {
      notice: (line) => process.stderr.write(`${line}\n`),
      progress: Progress.enabled(o.progress),
    });
    if (o.json) await write(process.stdout, jsonReport(result));
    else if (o.csv) await write(process.stdout, csvReport(result));
    else await write(process.stdout, textReport(result));
    if (o.csvFile) {
      try {
        writeFileSync(o.csvFile, csvReport(result));
      } catch (error) {
        return fail(`cannot write ${o.csvFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      if (!o.json) await write(process.stdout, `Saved metric data in csv file ${o.csvFile}\n`);
    }
    for (const w of result.warnings) await write(process.stderr, `natter bench: warning: ${w}\n`);
    // Stopping a responder with Ctrl-C is how reply mode ends; anywhere else it leaves partial results.
    const incomplete = result.lost > 0 || result.timeouts > 0 || (result.interrupted && o.mode !== "reply" && !(o.mode === "sub" && o.durationMs > 0));
    return incomplete ? 1 : 0;
  } catch (error) {
    if (error instanceof BenchError) return fail(error.message);
    return fail(`unexpected error: ${(error as Error)?.message ?? String(error)}`);
  }
}
