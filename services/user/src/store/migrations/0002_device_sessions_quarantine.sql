ALTER TABLE "users"."devices" ADD COLUMN "session_id" text;--> statement-breakpoint
ALTER TABLE "users"."devices" ADD COLUMN "quarantine_reason" text;--> statement-breakpoint
ALTER TABLE "users"."devices" ADD COLUMN "quarantined_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "users"."devices" ADD CONSTRAINT "devices_quarantine_complete" CHECK (("users"."devices"."quarantine_reason" is null) = ("users"."devices"."quarantined_at" is null));