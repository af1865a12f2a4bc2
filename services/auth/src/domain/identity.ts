import { parsePhoneNumberFromString } from "libphonenumber-js/max";

/** An account identity in its stored, normalised form. */
export type Identity = { kind: "email"; value: string } | { kind: "phone"; value: string };

/** The `oneof identity` shape shared by the auth requests. */
export type IdentityOneof =
  | { case: "email"; value: string }
  | { case: "phone"; value: string }
  | { case: undefined; value?: undefined };

/** Why an identity was refused; `field` names the request field. */
export class IdentityError extends Error {
  readonly field: "email" | "phone";
  constructor(field: "email" | "phone", message: string) {
    super(message);
    this.field = field;
  }
}

/**
 * Normalises an identity: emails are trimmed and lower-cased (so uniqueness is
 * case-insensitive), phones are parsed with full metadata and stored in E.164.
 * The validation interceptor already checked the rough shape; this is where a
 * phone number is checked against its country's real numbering plan.
 */
export function normaliseIdentity(identity: IdentityOneof): Identity {
  switch (identity.case) {
    case "email":
      return { kind: "email", value: identity.value.trim().toLowerCase() };
    case "phone": {
      const parsed = parsePhoneNumberFromString(identity.value.trim());
      if (parsed === undefined || !parsed.isValid()) {
        throw new IdentityError("phone", "not a valid phone number in international format (+ and country code)");
      }
      return { kind: "phone", value: parsed.number };
    }
    default:
      // The validation interceptor rejects a missing oneof before handlers run.
      throw new IdentityError("email", "an email or a phone is required");
  }
}

/** The key used for per-identity limits and codes. */
export function identityKey(identity: Identity): string {
  return `${identity.kind}:${identity.value}`;
}
