// Tests that compare natter with nats-server side by side need Debian's nats-server. .ci/run installs
// it; on a machine without it those tests are skipped with this message instead of failing.
export const HAS_NATS_SERVER = Bun.which("nats-server") !== null;

if (!HAS_NATS_SERVER) {
  console.warn("nats-server is not installed: side-by-side comparison tests are skipped (apt-get install -y nats-server)");
}
