CREATE SCHEMA IF NOT EXISTS "media";
--> statement-breakpoint
CREATE TABLE "media"."media_items" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"purpose" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"object_key" text NOT NULL,
	"declared_content_type" text NOT NULL,
	"declared_size_bytes" bigint NOT NULL,
	"content_type" text,
	"size_bytes" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"confirmed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "media_items_object_key_key" ON "media"."media_items" USING btree ("object_key");--> statement-breakpoint
CREATE INDEX "media_items_owner_idx" ON "media"."media_items" USING btree ("owner_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "media_items_pending_expiry_idx" ON "media"."media_items" USING btree ("expires_at") WHERE "media"."media_items"."status" = 'pending';