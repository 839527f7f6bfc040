// Shared by the security tests: raw-wire expectations, and a server's log/metrics checks.
import { expect } from "vitest";
import type { RawClient } from "../harness/raw.ts";

export const err = (text: string) => `-ERR '${text}'\r\n`;

/** The next frame must be exactly `-ERR '<text>'`, then the server must close the connection. */
export async function expectErrThenClose(c: RawClient, text: string, timeoutMs = 5_000): Promise<void> {
  await c.expect(err(text), timeoutMs);
  expect(await c.waitClosed(5_000), "connection should be closed after the -ERR").toBe(true);
}

/** The connection must still be open and working: PING answered by PONG with nothing before it. */
export async function expectOpen(c: RawClient): Promise<void> {
  expect(await c.flush()).toEqual([]);
  expect(c.closed).toBe(false);
}

export const raws = (fs: { raw: string }[]) => fs.map((f) => f.raw);

/** `CONNECT {json}\r\n` with verbose and pedantic off (what real clients send) plus `fields`. */
export const connectLine = (fields: Record<string, unknown>) => `CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...fields })}\r\n`;
