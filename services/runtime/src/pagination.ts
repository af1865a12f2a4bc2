// Opaque page tokens and page-size capping (AIP-158 style).
//
// A token is base64url(JSON payload) "." base64url(HMAC-SHA256 truncated to
// 128 bits). Clients cannot read meaning into it or forge one: the cursor
// inside (e.g. the last row's sort key) is only trusted after the MAC checks.
// The MAC also covers a namespace, so a token minted by one list method is
// rejected by another that shares the secret.
import { createHmac, timingSafeEqual } from "node:crypto";
import { invalidArgument } from "./errors.ts";

const MAC_BYTES = 16;
/** Longer tokens are rejected before any parsing or hashing. */
const MAX_TOKEN_LENGTH = 2048;

export interface PageTokens {
  /** Serialises `payload` (JSON-compatible) into an opaque token. */
  encode(payload: object): string;
  /**
   * Verifies and decodes `token`, then hands the JSON value to `parse`, which
   * must check its shape (throwing on mismatch). Any failure, including one
   * thrown by `parse`, becomes InvalidArgument on `page_token`.
   */
  decode<T>(token: string, parse: (value: unknown) => T): T;
}

function badToken(): Error {
  return invalidArgument([{ field: "page_token", description: "is not a valid page token", reason: "INVALID_PAGE_TOKEN" }]);
}

/**
 * `secret` should be at least 32 random bytes, from config. `namespace`
 * (e.g. "aviary.auth.v1.AuthService/ListSessions") binds tokens to one method.
 */
export function createPageTokens(secret: string | Uint8Array, namespace = ""): PageTokens {
  const key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (key.length < 16) throw new Error("page token secret must be at least 16 bytes");
  const mac = (body: string) => createHmac("sha256", key).update(namespace).update("\0").update(body).digest().subarray(0, MAC_BYTES);

  return {
    encode(payload) {
      const body = Buffer.from(JSON.stringify(payload), "utf8").toString("base64url");
      return `${body}.${mac(body).toString("base64url")}`;
    },
    decode(token, parse) {
      if (token.length > MAX_TOKEN_LENGTH) throw badToken();
      const dot = token.indexOf(".");
      if (dot <= 0 || dot !== token.lastIndexOf(".")) throw badToken();
      const body = token.slice(0, dot);
      const given = Buffer.from(token.slice(dot + 1), "base64url");
      // Buffer's base64url decoder skips junk characters; re-encoding catches
      // tokens that are not exactly what encode() produced.
      if (given.length !== MAC_BYTES || given.toString("base64url") !== token.slice(dot + 1)) throw badToken();
      if (!timingSafeEqual(given, mac(body))) throw badToken();
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
        return parse(value);
      } catch {
        throw badToken();
      }
    },
  };
}

/**
 * The page size to use: `defaults.default` when the client sent 0/unset,
 * capped at `defaults.max` (larger requests are clamped, not rejected, as
 * AIP-158 recommends); negative sizes are InvalidArgument on `page_size`.
 */
export function pageSize(requested: number | undefined, defaults: { default: number; max: number } = { default: 20, max: 100 }): number {
  if (requested === undefined || requested === 0) return Math.min(defaults.default, defaults.max);
  if (!Number.isInteger(requested) || requested < 0) {
    throw invalidArgument([{ field: "page_size", description: "must not be negative", reason: "MIN" }]);
  }
  return Math.min(requested, defaults.max);
}
