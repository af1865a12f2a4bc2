CREATE TABLE "chat"."reactions" (
	"conversation_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"user_id" uuid NOT NULL,
	"reaction" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "reactions_conversation_id_seq_user_id_reaction_pk" PRIMARY KEY("conversation_id","seq","user_id","reaction")
);
--> statement-breakpoint
ALTER TABLE "chat"."conversations" ADD COLUMN "avatar_media_id" uuid;--> statement-breakpoint
ALTER TABLE "chat"."conversations" ADD COLUMN "history_visibility" text DEFAULT 'from_join' NOT NULL;--> statement-breakpoint
ALTER TABLE "chat"."entries" ADD COLUMN "attachments" jsonb;--> statement-breakpoint
ALTER TABLE "chat"."entries" ADD COLUMN "edited_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "chat"."entries" ADD COLUMN "deleted_at" timestamp with time zone;