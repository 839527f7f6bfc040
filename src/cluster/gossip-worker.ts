// The gossip thread (see membership.ts): runs the membership protocol and its UDP socket, tells the
// main thread about membership changes, log lines and its state, and takes its calls as messages.
// A compiled binary needs this file as a second entry point (package.json's build script).
import type { Gossip, GossipLog, Member } from "./gossip.ts";
import { STATE_REPORT_MS, openGossip, type FromWorker, type ToWorker } from "./membership.ts";

declare const self: Worker;

let gossip: Gossip | null = null;
let close: (() => void) | null = null;
let reporter: ReturnType<typeof setInterval> | null = null;

function post(message: FromWorker): void {
  self.postMessage(message);
}

/** A plain copy (the Member object itself stays here and keeps changing). */
function copy(m: Member): Member {
  return { id: m.id, inc: m.inc, state: m.state, meta: m.meta, changedAt: m.changedAt };
}

async function start(config: Extract<ToWorker, { op: "start" }>["config"]): Promise<void> {
  const log: GossipLog = {
    info: (text) => post({ ev: "log", level: "info", text }),
    warn: (text) => post({ ev: "log", level: "warn", text }),
    debug: (text) => {
      if (config.debug) post({ ev: "log", level: "debug", text });
    },
  };
  try {
    const opened = await openGossip(
      config,
      {
        up: (m) => post({ ev: "up", member: copy(m) }),
        down: (m) => post({ ev: "down", member: copy(m) }),
        changed: (m) => post({ ev: "changed", member: copy(m) }),
      },
      log,
    );
    gossip = opened.gossip;
    close = opened.close;
  } catch (error) {
    post({ ev: "failed", error: (error as Error).message });
    return;
  }
  const g = gossip;
  post({ ev: "started", inc: g.inc });
  let inc = g.inc;
  let name = g.clusterName;
  let lastReport = 0;
  reporter = setInterval(() => {
    const now = Date.now();
    if (g.inc === inc && g.clusterName === name && now - lastReport < 1000) return;
    inc = g.inc;
    name = g.clusterName;
    lastReport = now;
    post({ ev: "state", inc, name, stats: { ...g.stats } });
  }, STATE_REPORT_MS);
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.op) {
    case "start":
      void start(m.config);
      return;
    case "heardFrom":
      return gossip?.heardFrom(m.id, m.inc);
    case "probeSoon":
      return gossip?.probeSoon(m.id);
    case "setMeta":
      return gossip?.setMeta(m.meta);
    case "name":
      if (gossip !== null) gossip.clusterName = m.name;
      return;
    case "stop":
      if (reporter !== null) clearInterval(reporter);
      close?.();
      gossip = null;
      return;
  }
};
