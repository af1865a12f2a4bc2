import test from "ava";
import { create, fromBinary } from "@bufbuild/protobuf";
import { GetHomeFeedResponseSchema } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { encodeMessage, unchanging } from "../src/encoding-memo.ts";

const page = () => create(GetHomeFeedResponseSchema, { nextPageToken: "next", items: [{ post: { postId: "p1", text: "hello" } }] });

test("a message marked unchanging is encoded once; its bytes decode to it", (t) => {
  const message = unchanging(page());
  const first = encodeMessage(GetHomeFeedResponseSchema, message);
  t.is(encodeMessage(GetHomeFeedResponseSchema, message), first, "the same bytes, not a second encoding");
  t.deepEqual(fromBinary(GetHomeFeedResponseSchema, first), message);
});

test("an unmarked message is encoded on every call, so a change to it is sent", (t) => {
  const message = page();
  const first = encodeMessage(GetHomeFeedResponseSchema, message);
  t.not(encodeMessage(GetHomeFeedResponseSchema, message), first);
  message.nextPageToken = "changed";
  t.is(fromBinary(GetHomeFeedResponseSchema, encodeMessage(GetHomeFeedResponseSchema, message)).nextPageToken, "changed");
});
