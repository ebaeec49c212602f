-- CreateIndex
CREATE INDEX "UsageLog_createdAt_id_idx" ON "UsageLog"("createdAt", "id");

