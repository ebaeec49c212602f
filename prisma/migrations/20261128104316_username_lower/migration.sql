-- Logins and username uniqueness compare one normalised spelling, kept by the database itself:
-- a stored generated column is computed for the existing rows here (the backfill) and on every
-- insert and rename afterwards, so no code path can leave it out of date.
-- `prisma migrate diff` renders the schema's @default(dbgenerated("lower(username)")) as a column
-- DEFAULT, which PostgreSQL refuses (a default cannot name a column): the generated column below
-- is the intended form.
-- Creating the unique index fails if two existing usernames differ only in case: rename one first.
-- (No semicolon may appear in these comments: the migration runner splits statements on it.)

-- AlterTable
ALTER TABLE "User" ADD COLUMN "usernameLower" TEXT NOT NULL GENERATED ALWAYS AS (lower("username")) STORED;

-- CreateIndex
CREATE UNIQUE INDEX "User_usernameLower_key" ON "User"("usernameLower");
