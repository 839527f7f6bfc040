// The subsystems a configuration may not use, loaded only when it uses them (issue 20: idle RSS).
//
// Every module loaded costs RSS for as long as the process lives (its source, its compiled functions, the
// Bun builtins it pulls in), used or not: a plain server has no business paying for the cluster, leaf
// nodes, MQTT, the monitoring server and the console. loadOptionalModules() imports what the options ask
// for, once, at configuration time (main.ts, before the Server is built); the server then takes them from
// here synchronously. Nothing here is on a message's path.
//
// A server built in a test process calls loadOptionalModules(options) before `new Server(options, …)`,
// as main.ts does. Asking for a module that was not loaded is a programming error and says so.
import type { Options } from "./options.ts";
import { effectiveLeafnodeOptions } from "./leaf/options.ts";

interface OptionalModules {
  /** Routes and membership: --cluster / cluster {}. */
  cluster: typeof import("./cluster/cluster.ts");
  /** Leaf node links: leafnodes {} / --leafnode_remote. */
  leaf: typeof import("./leaf/leafnodes.ts");
  /** MQTT: mqtt { port } / --mqtt_port. */
  mqtt: typeof import("./mqtt/mqtt.ts");
  /** The monitoring HTTP server: -m / http_port. */
  monitor: typeof import("./monitor/http.ts");
  /** The web console inside it, and its alerts: console { enabled } (which needs the monitoring port). */
  console: typeof import("./console/routes.ts");
  consoleAlerts: typeof import("./console/alerts.ts");
  /** Stream and service imports between accounts: accounts {}. */
  imports: typeof import("./accounts/imports.ts");
  /** TLS on a port that also takes plaintext clients: tls {} with allow_non_tls (node:tls, node:stream). */
  sniffedTls: typeof import("./transport/sniffed-tls.ts");
  /** Clustered JetStream (the meta group, raft, replicas): -js with a cluster. */
  jetstreamCluster: typeof import("./jetstream/cluster/clustered-api.ts");
}

const loaded: Partial<OptionalModules> = {};

/** Which optional modules `o` needs. */
export function modulesFor(o: Options): (keyof OptionalModules)[] {
  const wanted: (keyof OptionalModules)[] = [];
  if (o.clusterPort !== 0) wanted.push("cluster");
  if (effectiveLeafnodeOptions(o) !== null) wanted.push("leaf");
  if (o.mqtt.port !== 0) wanted.push("mqtt");
  if (o.httpPort !== 0 || o.httpsPort !== 0) wanted.push("monitor");
  if (o.console.enabled) wanted.push("console", "consoleAlerts");
  if (o.accounts.length > 0) wanted.push("imports");
  if (o.tls !== null && o.allowNonTls) wanted.push("sniffedTls");
  if (o.jetstream && o.clusterPort !== 0) wanted.push("jetstreamCluster");
  return wanted;
}

/** Imports every optional module `o` needs (those loaded already are not loaded again). */
export async function loadOptionalModules(o: Options): Promise<void> {
  for (const name of modulesFor(o)) if (loaded[name] === undefined) await importModule(name);
}

async function importModule(name: keyof OptionalModules): Promise<void> {
  switch (name) {
    case "cluster": loaded.cluster = await import("./cluster/cluster.ts"); break;
    case "leaf": loaded.leaf = await import("./leaf/leafnodes.ts"); break;
    case "mqtt": loaded.mqtt = await import("./mqtt/mqtt.ts"); break;
    case "monitor": loaded.monitor = await import("./monitor/http.ts"); break;
    case "console": loaded.console = await import("./console/routes.ts"); break;
    case "consoleAlerts": loaded.consoleAlerts = await import("./console/alerts.ts"); break;
    case "imports": loaded.imports = await import("./accounts/imports.ts"); break;
    case "sniffedTls": loaded.sniffedTls = await import("./transport/sniffed-tls.ts"); break;
    case "jetstreamCluster": loaded.jetstreamCluster = await import("./jetstream/cluster/clustered-api.ts"); break;
  }
}

/** An optional module loadOptionalModules() has loaded; throws if it was not. */
export function optionalModule<K extends keyof OptionalModules>(name: K): OptionalModules[K] {
  const module = loaded[name];
  if (module === undefined) throw new Error(`natter: the ${name} module was not loaded (loadOptionalModules(options) before new Server)`);
  return module as OptionalModules[K];
}
