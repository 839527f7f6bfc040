// In-process routes for the route protocol tests: unstarted servers joined by a Route each over a fake
// socket that records what the route writes. Not a test file (no *.test.ts).
import { expect } from "vitest";
import type { Socket } from "bun";
import { testLogger } from "../harness/failure-log.ts";
import { defaultOptions } from "../../src/options.ts";
import { Server } from "../../src/server.ts";
import { NO_ACCOUNT_LIMITS, type AccountOptions } from "../../src/accounts/options.ts";
import { PROTOCOL_VERSION, helloFrame, interestFrameLength, writeInterestFrame } from "../../src/cluster/protocol.ts";
import { Route, RouteState, accountTable, type RouteOwner, type RouteSocketData } from "../../src/cluster/route.ts";

/** An unstarted server with these accounts configured (besides $G and $SYS). */
export function server(accounts: string[] = []): Server {
  const configured: AccountOptions[] = accounts.map((name) => ({ name, users: [], exports: [], imports: [], limits: NO_ACCOUNT_LIMITS, jetstream: null }));
  return new Server({ ...defaultOptions, wsAllowedOrigins: [], routes: [], host: "127.0.0.1", port: -1, accounts: configured }, testLogger());
}

export interface Wire {
  route: Route;
  /** Every write of the route, in order. */
  written: Buffer[];
  /** The reasons it was closed with. */
  refusals: string[];
}

/** A route on `s` whose other node (`name`) lists `peerAccounts` in its HELLO (by default, the same as `s`); open. */
export function connectRoute(s: Server, name: string, peerAccounts: readonly string[] = accountTable(s).names): Wire {
  const written: Buffer[] = [];
  const refusals: string[] = [];
  const socket = {
    write(buf: Buffer, start: number, length: number) {
      written.push(Buffer.from(buf.subarray(start, start + length)));
      return length;
    },
    end() {},
  } as unknown as Socket<RouteSocketData>;
  const owner: RouteOwner = {
    server: s,
    onHello(route) {
      route.state = RouteState.OPEN;
      return null;
    },
    onClosed(_route, reason) {
      refusals.push(reason);
    },
  };
  const route = new Route(owner, socket, false, "127.0.0.1", 1);
  route.onRead(helloFrame({ v: PROTOCOL_VERSION, cluster: "t", id: `${name}:1`, inc: 1, server_id: name, server_name: name, accounts: [...peerAccounts] }));
  expect(route.state).toBe(RouteState.OPEN);
  return { route, written, refusals };
}

/** A SUB (weight ≥ 0) or UNSUB (weight < 0) frame for `subject` [`queue`] in the peer's account number `account`. */
export function interest(subject: string, queue: string | null, weight: number, account = 0): Buffer {
  const frame = Buffer.alloc(interestFrameLength(subject, queue, weight));
  writeInterestFrame(frame, 0, account, subject, queue, weight);
  return frame;
}
