CREATE SCHEMA IF NOT EXISTS "feed";
--> statement-breakpoint
CREATE TABLE "feed"."follower_counts" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"followers" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "feed"."follows" (
	"follower_id" uuid NOT NULL,
	"followee_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "follows_follower_id_followee_id_pk" PRIMARY KEY("follower_id","followee_id")
);
--> statement-breakpoint
CREATE TABLE "feed"."posts" (
	"post_id" uuid PRIMARY KEY NOT NULL,
	"author_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	"deleted_at" timestamp with time zone,
	"fanned_out" boolean DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE TABLE "feed"."processed_events" (
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "processed_events_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
CREATE INDEX "follows_followee_follower_idx" ON "feed"."follows" USING btree ("followee_id","follower_id");--> statement-breakpoint
CREATE INDEX "posts_author_created_idx" ON "feed"."posts" USING btree ("author_id","created_at" DESC NULLS LAST,"post_id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "posts_not_fanned_out_idx" ON "feed"."posts" USING btree ("author_id","created_at" DESC NULLS LAST,"post_id" DESC NULLS LAST) WHERE "feed"."posts"."fanned_out" = false and "feed"."posts"."deleted_at" is null;