CREATE TABLE "auth"."data_exports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"ready_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"object_key" text,
	"size_bytes" bigint,
	"failure_reason" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "data_exports_one_in_progress_key" ON "auth"."data_exports" USING btree ("user_id") WHERE "auth"."data_exports"."state" in ('pending', 'building');--> statement-breakpoint
CREATE INDEX "data_exports_user_requested_idx" ON "auth"."data_exports" USING btree ("user_id","requested_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "data_exports_ready_expiry_idx" ON "auth"."data_exports" USING btree ("expires_at") WHERE "auth"."data_exports"."state" = 'ready';