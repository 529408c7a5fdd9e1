// A throwaway self-signed certificate for localhost/127.0.0.1, made by openssl, for TLS tests.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

/** Writes key.pem and cert.pem (valid one day, for localhost and 127.0.0.1) into `dir`; their paths. */
export async function selfSignedCertificate(dir: string): Promise<{ key: string; cert: string }> {
  const [key, cert] = [join(dir, "key.pem"), join(dir, "cert.pem")];
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { key, cert };
}
