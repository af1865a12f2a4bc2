// Who is calling, as far as the transport can tell: the same rule for every
// transport that serves RPCs (connect-node's HTTP requests, grpc-js calls).
import net from "node:net";
import type { Peer } from "./context.ts";

function normalizeIp(ip: string): string {
  const v = ip.trim();
  return v.startsWith("::ffff:") && net.isIPv4(v.slice(7)) ? v.slice(7) : v;
}

/**
 * The peer of a call from the socket's address and the request's headers
 * (`header` returns a header's first value). With `trustedProxyHops` N > 0
 * the client IP is the N-th x-forwarded-for entry from the right (the
 * address the outermost trusted proxy saw); entries further left are
 * client-supplied and never trusted. With 0 the socket address is used.
 */
export function peerFrom(remoteAddress: string, header: (name: string) => string | undefined, trustedProxyHops: number): Peer {
  let ip = normalizeIp(remoteAddress);
  if (trustedProxyHops > 0) {
    const hops = (header("x-forwarded-for") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const candidate = hops[Math.max(0, hops.length - trustedProxyHops)];
    if (candidate !== undefined && net.isIP(normalizeIp(candidate)) !== 0) ip = normalizeIp(candidate);
  }
  // gRPC-web from browsers cannot set user-agent; grpc-web clients send x-user-agent.
  const userAgent = header("user-agent") ?? header("x-user-agent") ?? "";
  return { ip, userAgent: userAgent.slice(0, 512) };
}
