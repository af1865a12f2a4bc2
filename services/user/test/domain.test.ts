// The user service's plain functions, without infrastructure.
import test from "ava";
import { checkUsername, usernameKey } from "../src/domain/username.ts";
import { regionOfPhone } from "../src/domain/region.ts";
import { escapeLike, normaliseQuery } from "../src/domain/search.ts";

test("usernames: pattern, reserved names, lower-cased key", (t) => {
  t.deepEqual(checkUsername("Ada_99"), { ok: true, username: "Ada_99", key: "ada_99" });
  t.like(checkUsername("ab"), { ok: false, reason: "PATTERN" });
  t.like(checkUsername("a".repeat(31)), { ok: false, reason: "PATTERN" });
  t.like(checkUsername("ada-l"), { ok: false, reason: "PATTERN" });
  t.like(checkUsername("ädä"), { ok: false, reason: "PATTERN" });
  for (const name of ["Admin", "ROOT", "support", "aviary", "api", "www"]) t.like(checkUsername(name), { ok: false, reason: "RESERVED" });
  t.is(usernameKey("@Ada_L"), "ada_l");
});

test("region of a phone number", (t) => {
  t.is(regionOfPhone("+4915112345678"), "DE");
  t.is(regionOfPhone("+14155550123"), "US");
  t.is(regionOfPhone(""), undefined);
  t.is(regionOfPhone("not a phone"), undefined);
});

test("search input", (t) => {
  t.is(normaliseQuery("  @Ada "), "ada");
  t.is(escapeLike("a_b%c\\"), "a\\_b\\%c\\\\");
});
