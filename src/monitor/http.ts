// The monitoring HTTP listener (-m / --http_port, or over TLS with --https_port): nats-server's endpoints, answered the way its
// monitor answers them (server/monitor.go): indented JSON, `?callback=` for JSONP, 400 with a plain
// text for a bad query, Go's `404 page not found` for anything else. Plus /metrics for Prometheus.
import type { Server as BunServer } from "bun";
import type { Server } from "../server.ts";
import { COMPATIBLE_NATS_VERSION, NATTER_VERSION } from "../server.ts";
import { connz, connzOptions } from "./connz.ts";
import { accountz } from "./accountz.ts";
import { goJson } from "./format.ts";
import { METRICS_CONTENT_TYPE, metrics } from "./metrics.ts";
import { BadRequest, queryBool, querySubs } from "./query.ts";
import { routez } from "./routez.ts";
import { leafz } from "./leafz.ts";
import { subsz } from "./subsz.ts";
import { varz } from "./varz.ts";
import { clusterHealth, jsz, storageStates } from "../jetstream/jsz.ts";
import { optionalModule } from "../optional-modules.ts";
import { loadServerTls } from "../auth/tls.ts";
import type { TlsOptions } from "../auth/options.ts";

export interface MonitorListener {
  readonly port: number;
  stop(): void;
}

/** Answers with a JSON body, or JSONP when the query has `callback` (nats-server's handleResponse). */
function jsonResponse(q: URLSearchParams, body: string, status = 200): Response {
  const callback = q.get("callback");
  if (callback) {
    return new Response(`${callback}(${body})`, { status, headers: { "Content-Type": "application/javascript" } });
  }
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/json", "Access-Control-Allow-Origin": "*" },
  });
}

function textResponse(status: number, text: string, extra: Record<string, string> = {}): Response {
  return new Response(text, { status, headers: { "Content-Type": "text/plain; charset=utf-8", ...extra } });
}

const notFound = () => textResponse(404, "404 page not found\n", { "X-Content-Type-Options": "nosniff" });

function rootPage(withConsole: boolean): string {
  const links: [string, string][] = [
    ...(withConsole ? [["console", "Console"] as [string, string]] : []),
    ["varz", "General"],
    ["connz", "Connections"],
    ["accountz", "Accounts"],
    ["subsz", "Subscriptions"],
    ["routez", "Routes"],
    ["leafz", "Leafnodes"],
    ["healthz", "Health Probe"],
    ["latz", "Latency"],
    ["metrics", "Prometheus Metrics"],
  ];
  return `<html lang="en">
  <head>
    <title>natter</title>
    <style type="text/css">
      body { font-family: ui-sans-serif,system-ui,sans-serif; font-size: 18px; margin-left: 32px }
      a { display:block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92); text-decoration: none }
      a:hover { font-weight: 600; color: rgb(59 50 202) }
      .version { font-size: 14px; color: rgb(72 72 92) }
    </style>
  </head>
  <body>
    <h1>natter</h1>
    <p class="version">v${NATTER_VERSION} (nats-server ${COMPATIBLE_NATS_VERSION} compatible)</p>
${links.map(([path, label]) => `    <a href=./${path}>${label}</a>`).join("\n")}
  </body>
</html>
`;
}

type Handler = (q: URLSearchParams) => Response;

/**
 * The request handler alone (no socket): what Bun.serve calls, and what tests may call directly.
 * `httpReqStats` counts requests per endpoint, as /varz's http_req_stats reports them.
 */
export function createMonitorHandler(server: Server): { fetch(req: Request): Response; readonly httpReqStats: Record<string, number> } {
  const httpReqStats: Record<string, number> = {};
  const routes = new Map<string, { stat: string; handle: Handler }>();
  const route = (paths: string[], handle: Handler) => {
    for (const path of paths) routes.set(path, { stat: paths[0]!, handle });
  };

  route(["/"], () => new Response(rootPage(server.options.console.enabled), { headers: { "Content-Type": "text/html; charset=utf-8" } }));
  route(["/varz"], (q) => jsonResponse(q, goJson(varz(server, httpReqStats))));
  route(["/connz"], (q) => jsonResponse(q, goJson(connz(server, connzOptions(q)))));
  route(["/subsz", "/subscriptionsz"], (q) => jsonResponse(q, goJson(subsz(server, q))));
  route(["/accountz"], (q) => jsonResponse(q, goJson(accountz(server, q.get("acc") ?? ""))));
  route(["/routez"], (q) => jsonResponse(q, goJson(routez(server, querySubs(q)))));
  route(["/leafz"], (q) => jsonResponse(q, goJson(leafz(server, { subs: queryBool(q, "subs"), account: q.get("acc") ?? "" }))));
  route(["/healthz"], (q) => {
    for (const flag of ["js-enabled", "js-enabled-only", "js-server-only", "details"]) queryBool(q, flag);
    if (server.isShuttingDown) {
      return jsonResponse(q, goJson({ status: "unavailable", error: "server is shutting down" }, false), 503);
    }
    const enabledOnly = queryBool(q, "js-enabled-only") || queryBool(q, "js-enabled");
    // In a cluster: the meta group, then the streams assigned here (nats-server's checks and texts).
    const clusterError = enabledOnly ? null : clusterHealth(server, queryBool(q, "js-server-only"));
    if (clusterError !== null) return jsonResponse(q, goJson({ status: "unavailable", error: clusterError }, false), 503);
    // A stream that cannot write (a full disk): unavailable, in nats-server's words for an unhealthy stream.
    const failing = enabledOnly || queryBool(q, "js-server-only") ? undefined : storageStates(server).find((s) => s.error !== null);
    if (failing !== undefined) {
      const error = `JetStream stream '${failing.account} > ${failing.stream}' cannot write: ${failing.error}`;
      return jsonResponse(q, goJson({ status: "unavailable", error }, false), 503);
    }
    return jsonResponse(q, goJson({ status: "ok" }, false));
  });
  // /latz: HDR latency histograms; ?reset=true clears them after this answer.
  route(["/latz"], (q) => {
    const report = server.latency.report();
    if (queryBool(q, "reset")) server.latency.reset();
    return jsonResponse(q, goJson(report));
  });
  route(["/jsz"], (q) => jsonResponse(q, goJson(jsz(server, {
    accounts: queryBool(q, "accounts"), streams: queryBool(q, "streams"), consumers: queryBool(q, "consumers"), config: queryBool(q, "config"),
    account: q.get("acc") ?? "",
  }))));
  // With the console on, its alert gauges too (natter_alert_active; src/console/alerts.ts).
  // The console's alert states, when it is on (its modules are loaded only then).
  const alertMetrics = () => (server.options.console.enabled ? (optionalModule("consoleAlerts").serverAlerts.get(server)?.metrics() ?? "") : "");
  route(["/metrics"], () => new Response(metrics(server) + alertMetrics(), { headers: { "Content-Type": METRICS_CONTENT_TYPE } }));

  return {
    httpReqStats,
    fetch(req: Request): Response {
      const url = new URL(req.url);
      const r = routes.get(url.pathname);
      if (r === undefined) return notFound();
      httpReqStats[r.stat] = (httpReqStats[r.stat] ?? 0) + 1;
      try {
        return r.handle(url.searchParams);
      } catch (error) {
        if (error instanceof BadRequest) return textResponse(400, error.message);
        server.log.error(`Error serving ${url.pathname}: ${(error as Error).message}`);
        return textResponse(500, "internal error");
      }
    },
  };
}

/**
 * Starts the monitoring listener on host:port (0 = a random port). Throws if the port cannot be bound.
 * `tls` (https_port): the server's certificate, without asking for a client's (nats-server's monitor sets
 * ClientAuth to NoClientCert whatever the tls block's verify says).
 */
export function listenMonitor(server: Server, host: string, port: number, tls: TlsOptions | null = null): MonitorListener {
  const handler = createMonitorHandler(server);
  // The web console (--console), under /console: its own handler, asynchronous (sign-in, request bodies).
  const consoleHandler = server.options.console.enabled ? optionalModule("console").createConsoleHandler(server) : null;
  const bunServer: BunServer<undefined> = Bun.serve({
    hostname: host,
    port,
    development: false,
    // Bun.serve shares the port (SO_REUSEPORT) unless told not to: a second server on the same -m must be
    // refused, as nats-server's is (under --procs only worker 0 serves monitoring, so none needs to share).
    reusePort: false,
    ...(tls !== null ? { tls: { ...loadServerTls(tls).bun, requestCert: false, rejectUnauthorized: false } } : {}),
    fetch: (req, srv) => {
      if (consoleHandler !== null && consoleHandler.owns(new URL(req.url).pathname)) return consoleHandler.fetch(req, srv.requestIP(req)?.address);
      return handler.fetch(req);
    },
  });
  return {
    port: bunServer.port ?? port,
    stop: () => {
      consoleHandler?.stop();
      void bunServer.stop(true);
    },
  };
}
