import { parsePhoneNumberFromString } from "libphonenumber-js";

/** The ISO 3166-1 alpha-2 region of an E.164 phone number, or undefined (empty, unparseable, non-geographic). */
export function regionOfPhone(phone: string): string | undefined {
  if (phone === "") return undefined;
  return parsePhoneNumberFromString(phone)?.country;
}
