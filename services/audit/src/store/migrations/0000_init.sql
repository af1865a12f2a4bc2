CREATE SCHEMA IF NOT EXISTS "audit";
--> statement-breakpoint
CREATE TABLE "audit"."entries" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"kind" text NOT NULL,
	"actor_id" uuid,
	"subject" text NOT NULL,
	"details" jsonb NOT NULL,
	"source_event_id" uuid NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "entries_source_event_unique" UNIQUE("source_event_id")
);
--> statement-breakpoint
CREATE INDEX "entries_actor_idx" ON "audit"."entries" USING btree ("actor_id","seq");--> statement-breakpoint
CREATE INDEX "entries_subject_idx" ON "audit"."entries" USING btree ("subject","seq");--> statement-breakpoint
CREATE INDEX "entries_kind_idx" ON "audit"."entries" USING btree ("kind","seq");--> statement-breakpoint
CREATE INDEX "entries_occurred_idx" ON "audit"."entries" USING btree ("occurred_at");