// Apart from cluster.ts so that /varz can show it without loading the cluster (src/optional-modules.ts).

/** A route must complete its HELLO exchange within this (/varz shows it as cluster.auth_timeout). */
export const HANDSHAKE_TIMEOUT_MS = 3000;
