import type { PrismaClient } from "../db/index.js";
import { badInput, conflict, isUniqueViolation, notFound } from "../errors.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";

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
  /** Fields left undefined are unchanged. */
  update(docId: string, changes: Partial<DocFields>): Promise<void>;
  /** Publishing a published doc changes nothing. */
  publish(docId: string): Promise<void>;
  unpublish(docId: string): Promise<void>;
  delete(docId: string): Promise<void>;
}

export function createDeveloperDocs(options: { prisma: PrismaClient; pubsub: AppPubSub; now: () => Date }): DeveloperDocs {
  const { prisma } = options;
  // `@live` queries that show docs re-run on every instance once a change has committed.
  const changed = (docId: string) =>
    invalidateLive(options.pubsub, [liveKey("DeveloperDoc", docId), "Query.developerDocs", "Query.developerDoc", "Query.apiVersions"]);

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
  const found = (count: number) => {
    if (count === 0) throw notFound("No such doc");
  };

  return {
    async create(doc) {
      await partnerExists(doc.partnerId);
      const created = await prisma.developerDoc.create({ data: doc, select: { id: true } }).catch(slugTaken);
      changed(created.id);
      return created;
    },
    async update(docId, changes) {
      await partnerExists(changes.partnerId);
      found((await prisma.developerDoc.updateMany({ where: { id: docId }, data: changes }).catch(slugTaken)).count);
      changed(docId);
    },
    async publish(docId) {
      await prisma.developerDoc.updateMany({
        where: { id: docId, isPublished: false },
        data: { isPublished: true, publishedAt: options.now() },
      });
      found(await prisma.developerDoc.count({ where: { id: docId } }));
      changed(docId);
    },
    async unpublish(docId) {
      found((await prisma.developerDoc.updateMany({ where: { id: docId }, data: { isPublished: false, publishedAt: null } })).count);
      changed(docId);
    },
    async delete(docId) {
      found((await prisma.developerDoc.deleteMany({ where: { id: docId } })).count);
      changed(docId);
    },
  };
}
