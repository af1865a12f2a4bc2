import test from "ava";
import { IdentityError, normaliseIdentity } from "../src/domain/identity.ts";
import { argon2idHashing, passwordWeakness } from "../src/domain/passwords.ts";

test("emails are trimmed and lower-cased", (t) => {
  t.deepEqual(normaliseIdentity({ case: "email", value: "  Ada.Lovelace@Example.ORG " }), { kind: "email", value: "ada.lovelace@example.org" });
});

test("phones are normalised to E.164 whatever the punctuation", (t) => {
  t.deepEqual(normaliseIdentity({ case: "phone", value: "+1 (415) 555-2671" }), { kind: "phone", value: "+14155552671" });
  t.deepEqual(normaliseIdentity({ case: "phone", value: "+44 20 7946 0958" }), { kind: "phone", value: "+442079460958" });
});

test("phones that do not exist in their country's numbering plan are refused on the phone field", (t) => {
  const error = t.throws(() => normaliseIdentity({ case: "phone", value: "+1 000 000 0000" }), { instanceOf: IdentityError });
  t.is(error?.field, "phone");
  t.throws(() => normaliseIdentity({ case: "phone", value: "4155552671" }), { instanceOf: IdentityError }, "no country code");
});

test("common, monotonous and identity-containing passwords are weak", (t) => {
  t.regex(passwordWeakness("Password123") ?? "", /commonly used/);
  t.regex(passwordWeakness("aaaaaaaaaaaa") ?? "", /too few different/);
  t.regex(passwordWeakness("xx-adalovelace-99", { kind: "email", value: "adalovelace@example.org" }) ?? "", /must not contain/);
  t.is(passwordWeakness("violet-harbour-teapot-42", { kind: "email", value: "adalovelace@example.org" }), undefined);
});

test("argon2id hashes verify the right password only", async (t) => {
  const hashing = argon2idHashing({ memoryKiB: 1024, passes: 1 });
  const hashed = await hashing.hash("violet-harbour-teapot-42");
  t.true(hashed.startsWith("$argon2id$"));
  t.true(await hashing.verify(hashed, "violet-harbour-teapot-42"));
  t.false(await hashing.verify(hashed, "violet-harbour-teapot-43"));
  t.false(await hashing.verify("not a hash", "anything"), "a corrupt stored hash reads as no match");
});
