CREATE SCHEMA IF NOT EXISTS "chat";
--> statement-breakpoint
CREATE TABLE "chat"."conversations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"title" text,
	"direct_key" text,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_activity_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chat"."entries" (
	"conversation_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"id" uuid NOT NULL,
	"sender_id" uuid NOT NULL,
	"client_message_id" uuid,
	"text" text,
	"reply_to_seq" bigint,
	"membership" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "entries_conversation_id_seq_pk" PRIMARY KEY("conversation_id","seq")
);
--> statement-breakpoint
CREATE TABLE "chat"."members" (
	"conversation_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"role" text NOT NULL,
	"joined_seq" bigint NOT NULL,
	"read_seq" bigint DEFAULT 0 NOT NULL,
	"delivered_seq" bigint DEFAULT 0 NOT NULL,
	"left_at" timestamp with time zone,
	CONSTRAINT "members_conversation_id_user_id_pk" PRIMARY KEY("conversation_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "chat"."outbox_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "chat"."outbox_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"topic" text NOT NULL,
	"key" text NOT NULL,
	"type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"headers" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "chat"."processed_events" (
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "processed_events_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "conversations_direct_key" ON "chat"."conversations" USING btree ("direct_key") WHERE "chat"."conversations"."direct_key" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "entries_id_key" ON "chat"."entries" USING btree ("id");--> statement-breakpoint
CREATE UNIQUE INDEX "entries_sender_client_key" ON "chat"."entries" USING btree ("sender_id","client_message_id") WHERE "chat"."entries"."client_message_id" is not null;--> statement-breakpoint
CREATE INDEX "members_user_idx" ON "chat"."members" USING btree ("user_id") WHERE "chat"."members"."left_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_unpublished_idx" ON "chat"."outbox_events" USING btree ("seq") WHERE "chat"."outbox_events"."published_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_published_idx" ON "chat"."outbox_events" USING btree ("published_at") WHERE "chat"."outbox_events"."published_at" is not null;