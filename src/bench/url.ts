// Server URLs as the NATS tools take them: nats://[user:pass@|token@]host[:port], tls://…, or host[:port].

import { BenchError } from "./conn.ts";

export interface ServerUrl {
  host: string;
  port: number;
  tls: boolean;
  user?: string;
  password?: string;
  token?: string;
  /** The URL without credentials, for messages and reports. */
  display: string;
}

export const DEFAULT_URL = "nats://127.0.0.1:4222";

export function parseServerUrls(list: string): ServerUrl[] {
  const parts = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new BenchError(`invalid server URL "${list}"`);
  return parts.map(parseServerUrl);
}

export function parseServerUrl(text: string): ServerUrl {
  const bad = (why: string) => new BenchError(`invalid server URL "${text}": ${why}`);
  let rest = text;
  let scheme = "nats";
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(rest);
  if (m) {
    scheme = m[1]!.toLowerCase();
    rest = rest.slice(m[0].length);
  } else if (rest.includes("://")) {
    throw bad("bad scheme");
  }
  if (scheme !== "nats" && scheme !== "tls" && scheme !== "tcp") {
    throw bad(`unsupported scheme "${scheme}" (use nats:// or tls://)`);
  }
  rest = rest.replace(/\/+$/, "");
  if (rest.includes("/") || rest.includes("?") || rest.includes("#")) throw bad("unexpected path");
  let user: string | undefined;
  let password: string | undefined;
  let token: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(":");
    if (colon >= 0) {
      user = decodeURIComponent(auth.slice(0, colon));
      password = decodeURIComponent(auth.slice(colon + 1));
    } else {
      token = decodeURIComponent(auth);
    }
  }
  let host: string;
  let portText = "";
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw bad("unclosed [");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw bad("junk after the host");
      portText = after.slice(1);
    }
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon >= 0) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else {
      host = rest;
    }
  }
  if (host === "") throw bad("no host");
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) throw bad("bad host");
  let port = 4222;
  if (portText !== "") {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad("bad port");
    port = Number(portText);
  }
  const display = `${scheme === "tls" ? "tls" : "nats"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return { host, port, tls: scheme === "tls", user, password, token, display };
}
