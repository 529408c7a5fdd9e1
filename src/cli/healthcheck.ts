// `node src/cli/healthcheck.ts`: the container's HEALTHCHECK. Asks this
// instance's /readyz on loopback (PORT, plain or TLS) and exits 0 when ready,
// 1 otherwise; no curl or wget needed in the image.
import http from "node:http";
import https from "node:https";
import { ConfigError, loadConfig } from "../config.ts";

const TIMEOUT_MS = 3000;

try {
  const config = loadConfig();
  // Loopback is always reachable from inside the container, whatever HOST binds.
  const host = config.host === "::" || config.host === "0.0.0.0" || config.host === "127.0.0.1" ? "127.0.0.1" : config.host;
  const client = config.tlsCertFile ? https : http;
  // The certificate names the public host, not loopback: this probe checks readiness, not identity.
  const req = client.get({ host, port: config.port, path: "/readyz", timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
    res.resume();
    process.stdout.write(`/readyz: ${res.statusCode}\n`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
  req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
  req.on("error", (error) => {
    process.stderr.write(`/readyz: ${error.message}\n`);
    process.exit(1);
  });
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}
