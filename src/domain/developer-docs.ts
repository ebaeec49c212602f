import type { PrismaClient } from "../db/index.js";
import { badInput, conflict, isUniqueViolation, notFound } from "../errors.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { diff, recordAudit } from "./audit.js";

export interface DocFields {
  title: string;
  slug: string;
  content: string;
  apiVersion: string;
  /** The only partner the doc is for; null makes it public once published. */
  partnerId: string | null;
}

export interface DeveloperDocs {
  /** A new draft owned by its author. */
  create(doc: DocFields & { ownerId: string }): Promise<{ id: string }>;
  /**
   * Fields left undefined are unchanged. A change of title or content keeps the previous title and
   * content as a revision, naming who changed them.
   */
  update(docId: string, changes: Partial<DocFields>, actorUserId: string | null): Promise<void>;
  /**
   * Publishes a draft, or announces the changes made to a published doc since it was last
   * published, as a changelog entry with the optional note. Publishing a published doc whose title
   * and content have not changed since changes nothing.
   */
  publish(docId: string, publication: { actorUserId: string | null; note: string | null }): Promise<void>;
  unpublish(docId: string, actorUserId: string | null): Promise<void>;
  delete(docId: string, actorUserId: string | null): Promise<void>;
}

export function createDeveloperDocs(options: { prisma: PrismaClient; pubsub: AppPubSub; now: () => Date }): DeveloperDocs {
  const { prisma } = options;
  // `@live` queries that show docs re-run on every instance once a change has committed.
  const changed = (docId: string) =>
    invalidateLive(options.pubsub, [
      liveKey("DeveloperDoc", docId),
      "Query.developerDocs",
      "Query.developerDoc",
      "Query.apiVersions",
      "Query.changelog",
      "Query.auditEvents",
    ]);

  async function partnerExists(partnerId: string | null | undefined) {
    if (!partnerId) return;
    if (!(await prisma.partnerOrganization.findUnique({ where: { id: partnerId }, select: { id: true } }))) {
      throw badInput("input.partnerId: no such partner", { issues: [{ path: ["input", "partnerId"], message: "No such partner" }] });
    }
  }
  const slugTaken = (error: unknown): never => {
    if (isUniqueViolation(error)) throw conflict("A doc with that slug already exists for this apiVersion", { field: "slug" });
    throw error;
  };

  /** The doc's row, locked for the rest of the transaction so concurrent edits keep every revision. */
  type Locked = DocFields & { isPublished: boolean };
  async function lock(tx: Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0], docId: string): Promise<Locked> {
    const [doc] = await tx.$queryRaw<Locked[]>`
      SELECT title, slug, content, "apiVersion", "partnerId", "isPublished" FROM "DeveloperDoc" WHERE id = ${docId} FOR UPDATE`;
    if (!doc) throw notFound("No such doc");
    return doc;
  }

  return {
    async create(doc) {
      await partnerExists(doc.partnerId);
      const created = await prisma
        .$transaction(async (tx) => {
          const row = await tx.developerDoc.create({ data: doc, select: { id: true } });
          await recordAudit(tx, {
            action: "developerDocCreated",
            actorUserId: doc.ownerId,
            developerDocId: row.id,
            detail: { title: doc.title, slug: doc.slug, apiVersion: doc.apiVersion, partnerId: doc.partnerId },
          });
          return row;
        })
        .catch(slugTaken);
      changed(created.id);
      return created;
    },

    async update(docId, changes, actorUserId) {
      await partnerExists(changes.partnerId);
      await prisma
        .$transaction(async (tx) => {
          const before = await lock(tx, docId);
          const { content: _content, ...small } = changes;
          const detail: Record<string, unknown> = diff(
            { title: before.title, slug: before.slug, apiVersion: before.apiVersion, partnerId: before.partnerId },
            small,
          );
          // Content can be long: the event says that it changed, the revision keeps the text.
          const contentChanged = changes.content !== undefined && changes.content !== before.content;
          if (contentChanged) detail.content = { changed: true, fromLength: before.content.length, toLength: changes.content!.length };
          if (Object.keys(detail).length === 0) return;
          await tx.developerDoc.update({ where: { id: docId }, data: changes, select: { id: true } });
          if (contentChanged || (changes.title !== undefined && changes.title !== before.title)) {
            await tx.developerDocRevision.create({
              data: { docId, editorId: actorUserId, previousTitle: before.title, previousContent: before.content },
              select: { id: true },
            });
          }
          await recordAudit(tx, {
            action: "developerDocUpdated",
            actorUserId,
            developerDocId: docId,
            detail: detail as Record<string, never>,
          });
        })
        .catch(slugTaken);
      changed(docId);
    },

    async publish(docId, publication) {
      const published = await prisma.$transaction(async (tx) => {
        const doc = await lock(tx, docId);
        const at = options.now();
        // Revisions are only ever added (under this lock), so their count tells whether the title or
        // content changed since the last entry.
        const revisionCount = await tx.developerDocRevision.count({ where: { docId } });
        if (doc.isPublished) {
          const last = await tx.docChangelogEntry.findFirst({
            where: { docId },
            orderBy: [{ publishedAt: "desc" }, { id: "desc" }],
            select: { revisionCount: true },
          });
          if (last && last.revisionCount >= revisionCount) return false;
        } else {
          await tx.developerDoc.update({ where: { id: docId }, data: { isPublished: true, publishedAt: at }, select: { id: true } });
        }
        const entry = await tx.docChangelogEntry.create({
          data: {
            docId,
            apiVersion: doc.apiVersion,
            partnerId: doc.partnerId,
            title: doc.title,
            note: publication.note,
            revisionCount,
            publishedById: publication.actorUserId,
            publishedAt: at,
          },
          select: { id: true },
        });
        await recordAudit(tx, {
          action: "developerDocPublished",
          actorUserId: publication.actorUserId,
          developerDocId: docId,
          detail: { changelogEntryId: entry.id, republished: doc.isPublished, note: publication.note },
        });
        return true;
      });
      if (published) changed(docId);
    },

    async unpublish(docId, actorUserId) {
      const unpublished = await prisma.$transaction(async (tx) => {
        const doc = await lock(tx, docId);
        if (!doc.isPublished) return false;
        await tx.developerDoc.update({ where: { id: docId }, data: { isPublished: false, publishedAt: null }, select: { id: true } });
        await recordAudit(tx, { action: "developerDocUnpublished", actorUserId, developerDocId: docId });
        return true;
      });
      if (unpublished) changed(docId);
    },

    async delete(docId, actorUserId) {
      await prisma.$transaction(async (tx) => {
        const doc = await lock(tx, docId);
        // The event outlives the doc (its developerDocId becomes null), so it names what was deleted.
        await recordAudit(tx, {
          action: "developerDocDeleted",
          actorUserId,
          developerDocId: docId,
          detail: { title: doc.title, slug: doc.slug, apiVersion: doc.apiVersion, partnerId: doc.partnerId },
        });
        await tx.developerDoc.delete({ where: { id: docId }, select: { id: true } });
      });
      changed(docId);
    },
  };
}
