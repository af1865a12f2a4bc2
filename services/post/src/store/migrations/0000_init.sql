CREATE SCHEMA IF NOT EXISTS "posts";
--> statement-breakpoint
CREATE TABLE "posts"."comments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"post_id" uuid NOT NULL,
	"author_id" uuid NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "posts"."likes" (
	"post_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "likes_post_id_user_id_pk" PRIMARY KEY("post_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "posts"."outbox_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "posts"."outbox_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"topic" text NOT NULL,
	"key" text NOT NULL,
	"type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"headers" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "posts"."posts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"text" text NOT NULL,
	"media_ids" text[] DEFAULT '{}'::text[] NOT NULL,
	"reply_to_post_id" uuid,
	"mentions" text[] DEFAULT '{}'::text[] NOT NULL,
	"hashtags" text[] DEFAULT '{}'::text[] NOT NULL,
	"like_count" bigint DEFAULT 0 NOT NULL,
	"comment_count" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "posts_counts_non_negative" CHECK ("posts"."posts"."like_count" >= 0 and "posts"."posts"."comment_count" >= 0)
);
--> statement-breakpoint
CREATE INDEX "comments_post_created_idx" ON "posts"."comments" USING btree ("post_id","created_at","id");--> statement-breakpoint
CREATE INDEX "outbox_events_unpublished_idx" ON "posts"."outbox_events" USING btree ("seq") WHERE "posts"."outbox_events"."published_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_published_idx" ON "posts"."outbox_events" USING btree ("published_at") WHERE "posts"."outbox_events"."published_at" is not null;--> statement-breakpoint
CREATE INDEX "posts_author_created_idx" ON "posts"."posts" USING btree ("author_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE "posts"."posts"."deleted_at" is null;