-- AlterTable
ALTER TABLE "UsageBatch" ADD COLUMN     "requestHash" TEXT;

