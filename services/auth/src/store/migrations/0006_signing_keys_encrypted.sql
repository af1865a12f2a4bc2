ALTER TABLE "auth"."signing_keys" ALTER COLUMN "private_jwk" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "auth"."signing_keys" ADD COLUMN "private_key_sealed" "bytea";--> statement-breakpoint
ALTER TABLE "auth"."signing_keys" ADD COLUMN "kek_id" text;