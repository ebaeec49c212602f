-- AlterEnum (IF NOT EXISTS: other migrations may add values to the same enum)
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'apiKeyUpdated';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'apiKeyDisabled';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'apiKeyEnabled';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'partnerCreated';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'partnerUpdated';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'userRoleChanged';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'userPartnerChanged';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'developerDocCreated';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'developerDocUpdated';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'developerDocPublished';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'developerDocUnpublished';
ALTER TYPE "AuditAction" ADD VALUE IF NOT EXISTS 'developerDocDeleted';

-- AlterTable
ALTER TABLE "AuditEvent" ADD COLUMN     "developerDocId" TEXT,
ADD COLUMN     "serviceCredentialId" TEXT,
ADD COLUMN     "userId" TEXT;

-- CreateTable
CREATE TABLE "DeveloperDocRevision" (
    "id" TEXT NOT NULL,
    "docId" TEXT NOT NULL,
    "editorId" TEXT,
    "previousTitle" TEXT NOT NULL,
    "previousContent" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "DeveloperDocRevision_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "DocChangelogEntry" (
    "id" TEXT NOT NULL,
    "docId" TEXT NOT NULL,
    "apiVersion" TEXT NOT NULL,
    "partnerId" TEXT,
    "title" TEXT NOT NULL,
    "note" TEXT,
    "revisionCount" INTEGER NOT NULL DEFAULT 0,
    "publishedById" TEXT,
    "publishedAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "DocChangelogEntry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "DeveloperDocRevision_docId_createdAt_id_idx" ON "DeveloperDocRevision"("docId", "createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "DocChangelogEntry_apiVersion_publishedAt_id_idx" ON "DocChangelogEntry"("apiVersion", "publishedAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "DocChangelogEntry_partnerId_publishedAt_id_idx" ON "DocChangelogEntry"("partnerId", "publishedAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "DocChangelogEntry_publishedAt_id_idx" ON "DocChangelogEntry"("publishedAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "AuditEvent_createdAt_id_idx" ON "AuditEvent"("createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "AuditEvent_actorUserId_createdAt_idx" ON "AuditEvent"("actorUserId", "createdAt" DESC);

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_serviceCredentialId_fkey" FOREIGN KEY ("serviceCredentialId") REFERENCES "ServiceCredential"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_developerDocId_fkey" FOREIGN KEY ("developerDocId") REFERENCES "DeveloperDoc"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DeveloperDocRevision" ADD CONSTRAINT "DeveloperDocRevision_docId_fkey" FOREIGN KEY ("docId") REFERENCES "DeveloperDoc"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DeveloperDocRevision" ADD CONSTRAINT "DeveloperDocRevision_editorId_fkey" FOREIGN KEY ("editorId") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DocChangelogEntry" ADD CONSTRAINT "DocChangelogEntry_docId_fkey" FOREIGN KEY ("docId") REFERENCES "DeveloperDoc"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DocChangelogEntry" ADD CONSTRAINT "DocChangelogEntry_partnerId_fkey" FOREIGN KEY ("partnerId") REFERENCES "PartnerOrganization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DocChangelogEntry" ADD CONSTRAINT "DocChangelogEntry_publishedById_fkey" FOREIGN KEY ("publishedById") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

