CREATE SCHEMA IF NOT EXISTS "moderation";
--> statement-breakpoint
CREATE TABLE "moderation"."outbox_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "moderation"."outbox_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"topic" text NOT NULL,
	"key" text NOT NULL,
	"type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"headers" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "moderation"."removals" (
	"target_kind" text NOT NULL,
	"target_id" uuid NOT NULL,
	"removed" boolean NOT NULL,
	"reason" text NOT NULL,
	"moderator_id" uuid NOT NULL,
	"report_id" uuid,
	"changed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "removals_target_kind_target_id_pk" PRIMARY KEY("target_kind","target_id")
);
--> statement-breakpoint
CREATE TABLE "moderation"."reports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"reporter_id" uuid NOT NULL,
	"target_kind" text NOT NULL,
	"target_id" uuid NOT NULL,
	"reason" integer NOT NULL,
	"note" text NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"resolution" integer,
	"resolved_by" uuid,
	"resolution_note" text,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "moderation"."suspensions" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"suspended" boolean NOT NULL,
	"reason" text NOT NULL,
	"moderator_id" uuid NOT NULL,
	"report_id" uuid,
	"changed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "outbox_events_unpublished_idx" ON "moderation"."outbox_events" USING btree ("seq") WHERE "moderation"."outbox_events"."published_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_published_idx" ON "moderation"."outbox_events" USING btree ("published_at") WHERE "moderation"."outbox_events"."published_at" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "reports_one_open_per_reporter" ON "moderation"."reports" USING btree ("reporter_id","target_kind","target_id") WHERE "moderation"."reports"."status" = 'open';--> statement-breakpoint
CREATE INDEX "reports_queue_idx" ON "moderation"."reports" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "reports_queue_kind_idx" ON "moderation"."reports" USING btree ("status","target_kind","created_at","id");--> statement-breakpoint
CREATE INDEX "reports_open_target_idx" ON "moderation"."reports" USING btree ("target_kind","target_id") WHERE "moderation"."reports"."status" = 'open';