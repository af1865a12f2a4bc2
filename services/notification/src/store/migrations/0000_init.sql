CREATE SCHEMA IF NOT EXISTS "notification";
--> statement-breakpoint
CREATE TABLE "notification"."blocks" (
	"blocker_id" uuid NOT NULL,
	"blocked_id" uuid NOT NULL,
	CONSTRAINT "blocks_blocker_id_blocked_id_pk" PRIMARY KEY("blocker_id","blocked_id")
);
--> statement-breakpoint
CREATE TABLE "notification"."deleted_posts" (
	"post_id" uuid PRIMARY KEY NOT NULL,
	"deleted_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification"."deliveries" (
	"notification_id" uuid NOT NULL,
	"device_id" uuid NOT NULL,
	"recipient_id" uuid NOT NULL,
	"platform" text NOT NULL,
	"status" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "deliveries_notification_id_device_id_pk" PRIMARY KEY("notification_id","device_id")
);
--> statement-breakpoint
CREATE TABLE "notification"."follows" (
	"follower_id" uuid NOT NULL,
	"followee_id" uuid NOT NULL,
	CONSTRAINT "follows_follower_id_followee_id_pk" PRIMARY KEY("follower_id","followee_id")
);
--> statement-breakpoint
CREATE TABLE "notification"."groups" (
	"id" uuid PRIMARY KEY NOT NULL,
	"recipient_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"group_key" text NOT NULL,
	"post_id" uuid,
	"latest_source_id" uuid,
	"notification_count" integer NOT NULL,
	"actor_count" integer NOT NULL,
	"sample_actor_ids" uuid[] NOT NULL,
	"latest_seq" bigint NOT NULL,
	"latest_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification"."notifications" (
	"id" uuid PRIMARY KEY NOT NULL,
	"recipient_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"group_id" uuid NOT NULL,
	"actor_id" uuid NOT NULL,
	"post_id" uuid,
	"source_id" uuid,
	"seq" bigint NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"removed_at" timestamp with time zone,
	"event_id" uuid NOT NULL,
	"removed_by_event_id" uuid
);
--> statement-breakpoint
CREATE TABLE "notification"."outbox_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "notification"."outbox_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"topic" text NOT NULL,
	"key" text NOT NULL,
	"type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"headers" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "notification"."preferences" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"channels" jsonb NOT NULL,
	"only_from_following" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification"."processed_events" (
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "processed_events_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
CREATE TABLE "notification"."recipients" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"seen_seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "groups_recipient_key_key" ON "notification"."groups" USING btree ("recipient_id","group_key");--> statement-breakpoint
CREATE INDEX "groups_recipient_latest_idx" ON "notification"."groups" USING btree ("recipient_id","latest_seq" DESC NULLS LAST) WHERE "notification"."groups"."notification_count" > 0;--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_recipient_seq_key" ON "notification"."notifications" USING btree ("recipient_id","seq");--> statement-breakpoint
CREATE INDEX "notifications_group_seq_idx" ON "notification"."notifications" USING btree ("group_id","seq" DESC NULLS LAST) WHERE "notification"."notifications"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "notifications_post_idx" ON "notification"."notifications" USING btree ("post_id") WHERE "notification"."notifications"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "notifications_source_idx" ON "notification"."notifications" USING btree ("source_id") WHERE "notification"."notifications"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "notifications_recipient_actor_idx" ON "notification"."notifications" USING btree ("recipient_id","actor_id") WHERE "notification"."notifications"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "notifications_event_idx" ON "notification"."notifications" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "notifications_removed_by_event_idx" ON "notification"."notifications" USING btree ("removed_by_event_id") WHERE "notification"."notifications"."removed_by_event_id" is not null;--> statement-breakpoint
CREATE INDEX "outbox_events_unpublished_idx" ON "notification"."outbox_events" USING btree ("seq") WHERE "notification"."outbox_events"."published_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_published_idx" ON "notification"."outbox_events" USING btree ("published_at") WHERE "notification"."outbox_events"."published_at" is not null;