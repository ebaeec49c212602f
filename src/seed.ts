import { randomBytes } from "node:crypto";
import { hashPassword } from "./auth/password.js";
import type { PrismaClient } from "./db/index.js";
import type { ApiKeys } from "./domain/api-keys.js";
import type { Partners } from "./domain/partners.js";
import type { HttpMethod, Role } from "./generated/prisma/enums.js";
import { rebuildUsageRollups } from "./usage/rollups.js";

export interface DemoAccount {
  username: string;
  email: string;
  role: Role;
  partner: string | null;
}

export interface DemoSeed {
  password: string;
  accounts: DemoAccount[];
}

export interface SeedOptions {
  /** One password for every demo account; generated when not given. */
  password?: string;
  now?: Date;
}

/** A random password of 20 base64url characters (120 bits). */
export const generatePassword = () => randomBytes(15).toString("base64url");

const PARTNERS = [
  { slug: "acme", name: "Acme Logistics", supportTier: "premium" as const },
  { slug: "globex", name: "Globex Payments", supportTier: "standard" as const },
];
const ENDPOINTS: Array<[string, HttpMethod]> = [
  ["/v1/shipments", "GET"],
  ["/v1/shipments", "POST"],
  ["/v1/rates", "GET"],
  ["/v1/tracking/{id}", "GET"],
  ["/v1/webhooks", "PUT"],
];
const STATUSES = [200, 200, 200, 200, 201, 204, 304, 400, 401, 404, 429, 500, 503];

/** Wipes nothing: adds the demo organisations, people, keys, usage and docs. */
export async function seedDemoData(
  { prisma, apiKeys, partners }: { prisma: PrismaClient; apiKeys: ApiKeys; partners: Partners },
  options: SeedOptions = {},
): Promise<DemoSeed> {
  const password = options.password ?? generatePassword();
  const passwordHash = await hashPassword(password);
  const now = options.now ?? new Date();
  const accounts: DemoAccount[] = [];

  const person = async (username: string, role: Role, partnerId: string | null, partner: string | null) => {
    const email = `${username}@example.com`;
    accounts.push({ username, email, role, partner });
    return prisma.user.create({ data: { username, email, password: passwordHash, role, partnerId } });
  };

  const admin = await person("admin", "admin", null, null);
  const support = await person("support", "support", null, null);

  await prisma.developerDoc.create({
    data: {
      title: "Getting started",
      slug: "getting-started",
      apiVersion: "v1",
      content: "# Getting started\n\nSend your API key as `Authorization: Bearer <key>`.\n",
      isPublished: true,
      publishedAt: now,
      ownerId: support.id,
    },
  });
  await prisma.developerDoc.create({
    data: {
      title: "Rate limits (draft)",
      slug: "rate-limits",
      apiVersion: "v1",
      content: "# Rate limits\n\nDraft: numbers to be confirmed.\n",
      ownerId: admin.id,
    },
  });

  let sequence = 0;
  for (const spec of PARTNERS) {
    // Onboarded as an admin would: the contact signs up as a developer, and createPartner moves
    // them in as the partner's partnerAdmin and primary contact.
    const partnerAdmin = await person(`${spec.slug}-admin`, "developer", null, spec.name);
    accounts.at(-1)!.role = "partnerAdmin";
    const partner = await partners.create({
      name: spec.name,
      supportTier: spec.supportTier,
      status: "active",
      primaryContact: { userId: partnerAdmin.id },
      actorUserId: admin.id,
    });
    await person(`${spec.slug}-dev`, "developer", partner.id, spec.name);

    for (const keyName of ["Production", "Staging"]) {
      // Issued as the partner's admin would issue it (its secret is not kept: nobody needs it).
      const { apiKeyId } = await apiKeys.issue({
        partnerId: partner.id,
        keyName,
        scopes: keyName === "Production" ? ["usage:read", "usage:write", "docs:read"] : ["docs:read"],
        expiresAt: null,
        actorUserId: partnerAdmin.id,
      });
      const key = await prisma.apiKey.update({ where: { id: apiKeyId }, data: { lastUsedAt: now }, select: { id: true } });
      await prisma.usageLog.createMany({
        data: Array.from({ length: 60 }, (_, i) => {
          sequence += 1;
          const [endpoint, method] = ENDPOINTS[sequence % ENDPOINTS.length]!;
          return {
            partnerId: partner.id,
            apiKeyId: key.id,
            endpoint,
            method,
            statusCode: STATUSES[(sequence * 7) % STATUSES.length]!,
            requestCount: 1 + ((sequence * 13) % 40),
            occurredAt: new Date(now.getTime() - i * 24 * 60 * 1000),
          };
        }),
      });
    }
    await rebuildUsageRollups(prisma, [partner.id]);

    await prisma.developerDoc.create({
      data: {
        title: `${spec.name} integration guide`,
        slug: `${spec.slug}-integration`,
        apiVersion: "v1",
        content: `# ${spec.name} integration\n\nPartner-specific notes.\n`,
        isPublished: true,
        publishedAt: now,
        ownerId: support.id,
        partnerId: partner.id,
      },
    });
  }
  return { password, accounts };
}

/**
 * Creates the operator's first admin when no user has that email. An existing user is left as
 * it is: its password is never changed from here.
 */
export async function ensureAdmin(
  prisma: PrismaClient,
  admin: { email: string; username?: string; password: string },
): Promise<"created" | "exists"> {
  const email = admin.email.trim().toLowerCase();
  if (await prisma.user.findUnique({ where: { email }, select: { id: true } })) return "exists";
  const username = admin.username ?? email.split("@")[0]!.replace(/[^A-Za-z0-9_.-]/g, "-");
  await prisma.user.create({
    data: { username, email, role: "admin", password: await hashPassword(admin.password) },
  });
  return "created";
}
