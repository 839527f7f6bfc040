// A natter that a bench script starts with its log piped (bench/jit-timeline.ts, bench/rr-tail.ts): each log
// line stamped when it arrives, and the wait for its client port to answer.
import net from "node:net";

/** A log line and when it arrived, by the caller's clock. */
export interface Stamped {
  t: number;
  line: string;
}

/** Reads `stream` to its end, pushing each line onto `into` with the clock's time at its arrival. */
export async function stampLines(stream: ReadableStream<Uint8Array>, clock: () => number, into: Stamped[]): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    const t = clock();
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split("\n");
    rest = parts.pop()!;
    for (const line of parts) into.push({ t, line });
  }
}

/** Resolves once natter answers on `port` with INFO (a probe's connection alone does not start the warm-up). */
export async function waitForInfo(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("data", (d) => {
        s.destroy();
        resolve(d.toString("latin1").startsWith("INFO "));
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error("natter did not start");
    await Bun.sleep(50);
  }
}
