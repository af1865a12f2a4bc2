// A throwaway certificate authority and a server certificate for localhost and
// 127.0.0.1, so the provider test servers speak real TLS (APNs and FCM clients
// never talk plaintext) and the adapters are handed the CA, as PUSH_CA_FILE
// would hand it in a test deployment. Generated once per process with the
// openssl CLI.

import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestTls {
  /** The CA certificate (PEM): what clients trust. */
  readonly ca: string;
  /** The server certificate (PEM), signed by the CA, for localhost and 127.0.0.1. */
  readonly cert: string;
  /** The server's private key (PEM). */
  readonly key: string;
}

let generated: Promise<TestTls> | undefined;

async function generate(): Promise<TestTls> {
  const dir = await mkdtemp(join(tmpdir(), "aviary-push-tls-"));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => run("openssl", args, { cwd: dir });
  try {
    // P-256 keys: generated in milliseconds, and what the providers use too.
    await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=Aviary push test CA");
    await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=localhost");
    await writeFile(file("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
    await openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.pem"), "-days", "2", "-extfile", file("server.ext"));
    const [ca, cert, key] = await Promise.all([readFile(file("ca.pem"), "utf8"), readFile(file("server.pem"), "utf8"), readFile(file("server.key"), "utf8")]);
    return { ca, cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The process's test CA and server certificate (generated on first call). */
export function testTls(): Promise<TestTls> {
  generated ??= generate().catch((e: unknown) => {
    generated = undefined;
    throw e;
  });
  return generated;
}
