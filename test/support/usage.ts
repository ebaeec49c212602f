import { encodeGlobalID } from "@pothos/plugin-relay";
import { generateSecret, hashSecret } from "../../src/auth/api-key-secret.js";
import type { TestServer } from "./server.js";

export const RECORD_USAGE = /* GraphQL */ `
  mutation RecordUsage($events: [UsageEventInput!]!, $idempotencyKey: String) {
    recordUsage(events: $events, idempotencyKey: $idempotencyKey) { accepted rejected { index code message } }
  }
`;

export interface TestKey {
  id: string;
  globalId: string;
  secret: string;
  partnerId: string;
}

/** A partner's API key inserted directly (its secret hashed as the server does). */
export async function createKey(
  server: TestServer,
  partnerId: string,
  createdById: string,
  data: { keyName?: string; revokedAt?: Date; expiresAt?: Date; isActive?: boolean } = {},
): Promise<TestKey> {
  const { secret, tokenPrefix } = generateSecret("ppk", server.config.apiKeys.environment);
  const key = await server.app.services.prisma.apiKey.create({
    data: {
      keyName: data.keyName ?? `key-${tokenPrefix}`,
      tokenPrefix,
      scopes: ["usage:write"],
      partnerId,
      createdById,
      secretHash: hashSecret(server.app.secrets.apiKeyHashSecret, secret),
      revokedAt: data.revokedAt,
      expiresAt: data.expiresAt,
      isActive: data.isActive ?? !data.revokedAt,
    },
  });
  return { id: key.id, globalId: encodeGlobalID("APIKey", key.id), secret, partnerId };
}

/** A service credential for the gateway; answers its bearer secret. */
export async function createGatewayCredential(server: TestServer, name = "gateway"): Promise<string> {
  const { secret, tokenPrefix } = generateSecret("pps", server.config.apiKeys.environment);
  await server.app.services.prisma.serviceCredential.create({
    data: { name, tokenPrefix, secretHash: hashSecret(server.app.secrets.apiKeyHashSecret, secret) },
  });
  return secret;
}

/** A partner with a partnerAdmin (who creates its keys). */
export async function createPartner(server: TestServer, name: string) {
  const prisma = server.app.services.prisma;
  const partner = await prisma.partnerOrganization.create({ data: { name } });
  const owner = await prisma.user.create({
    data: { username: `owner-${partner.id.slice(-12)}`, email: `owner-${partner.id.slice(-12)}@example.test`, password: "x", role: "partnerAdmin", partnerId: partner.id },
  });
  return { id: partner.id, globalId: encodeGlobalID("PartnerOrganization", partner.id), ownerId: owner.id };
}

export const event = (key: TestKey | string, extra: Record<string, unknown> = {}) => ({
  apiKeyId: typeof key === "string" ? key : key.globalId,
  endpoint: "/v1/orders",
  method: "GET",
  statusCode: 200,
  ...extra,
});
