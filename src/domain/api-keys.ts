import { generateSecret, hashSecret, type SecretEnvironment } from "../auth/api-key-secret.js";
import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { PrismaClient } from "../db/index.js";
import { badInput, conflict, forbidden, isUniqueViolation, notFound } from "../errors.js";
import { invalidateLive, liveKey } from "../realtime/live.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { diff, recordAudit } from "./audit.js";

/** Seven days: long enough to roll a key through any deployment, short enough to bound a leak. */
export const MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 60 * 60;

export interface IssuedSecret {
  apiKeyId: string;
  /** The secret, shown this once: only its keyed hash is stored. */
  secret: string;
}

export interface NewApiKey {
  partnerId: string;
  keyName: string;
  /** Stored scope strings (`usage:read`); duplicates are dropped. */
  scopes: readonly string[];
  expiresAt: Date | null;
  /** The user issuing it (the key's creator). */
  actorUserId: string;
}

export interface ApiKeyChanges {
  keyName?: string;
  /** Stored scope strings; duplicates are dropped. */
  scopes?: readonly string[];
  /** A future time, or null for never. */
  expiresAt?: Date | null;
}

export interface ApiKeyEditor {
  userId: string;
  /** Whether the editor may add scopes the key lacks (admins); others may only remove some. */
  mayWidenScopes: boolean;
}

export interface ApiKeys {
  issue(key: NewApiKey): Promise<IssuedSecret>;
  /**
   * A new secret for the key, keeping its name, scopes and partner; the old secret keeps working
   * for the grace period, and a secret replaced earlier stops at once.
   */
  rotate(apiKeyId: string, gracePeriodSeconds: number, actorUserId: string): Promise<IssuedSecret>;
  /** Refused from the next verification on, on every instance. Revoking twice changes nothing. */
  revoke(apiKeyId: string, actorUserId: string): Promise<void>;
  /**
   * Renames a key, changes its scopes or its expiry (fields left undefined are unchanged). Adding a
   * scope needs `mayWidenScopes`; a revoked key cannot change. Effective from the next
   * verification, on every instance.
   */
  update(apiKeyId: string, changes: ApiKeyChanges, editor: ApiKeyEditor): Promise<void>;
  /** Refuses the key (`DISABLED`) until enabled again; disabling twice changes nothing. */
  disable(apiKeyId: string, actorUserId: string): Promise<void>;
  /** Lets a disabled key verify again; a revoked key stays revoked (CONFLICT). */
  enable(apiKeyId: string, actorUserId: string): Promise<void>;
}

const isRecordNotFound = (error: unknown) =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2025";

/** Issuing, rotating and revoking partners' API keys, each with its audit event, for every caller. */
export function createApiKeys(options: {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "invalidateKey">;
  pubsub: AppPubSub;
  hashKey: Uint8Array;
  environment: SecretEnvironment;
  now: () => Date;
}): ApiKeys {
  const { prisma, now } = options;
  const newSecret = () => {
    const { secret, tokenPrefix } = generateSecret("ppk", options.environment);
    return { secret, tokenPrefix, secretHash: hashSecret(options.hashKey, secret) };
  };
  // `@live` queries showing the key, its partner's keys, any list of keys, or the audit log re-run everywhere.
  const changed = (apiKeyId: string, partnerId: string) =>
    invalidateLive(options.pubsub, [
      liveKey("APIKey", apiKeyId),
      liveKey("PartnerOrganization", partnerId),
      "Query.apiKeys",
      "Query.auditEvents",
    ]);

  const futureExpiry = (expiresAt: Date | null | undefined) => {
    if (expiresAt && expiresAt.getTime() <= now().getTime()) {
      throw badInput("input.expiresAt: Expiry must be in the future", {
        issues: [{ path: ["input", "expiresAt"], message: "Expiry must be in the future" }],
      });
    }
  };

  /**
   * Sets isActive on a key that is not revoked, with its audit event; answers without an event
   * when the key already had that state.
   */
  async function setActive(apiKeyId: string, isActive: boolean, actorUserId: string) {
    const partnerId = await prisma.$transaction(async (tx) => {
      const key = await tx.apiKey.findUnique({ where: { id: apiKeyId }, select: { partnerId: true, revokedAt: true } });
      if (!key) throw notFound("No such API key");
      const { count } = await tx.apiKey.updateMany({
        where: { id: apiKeyId, revokedAt: null, isActive: !isActive },
        data: { isActive },
      });
      if (count === 1) {
        await recordAudit(tx, {
          action: isActive ? "apiKeyEnabled" : "apiKeyDisabled",
          actorUserId,
          partnerId: key.partnerId,
          apiKeyId,
        });
        return key.partnerId;
      }
      // Revocation is final: neither enabling nor disabling undoes or changes it.
      if (await tx.apiKey.count({ where: { id: apiKeyId, revokedAt: { not: null } } })) {
        throw conflict("A revoked key cannot be enabled or disabled", { reason: "REVOKED" });
      }
      return null;
    });
    if (partnerId) {
      await options.verifier.invalidateKey(apiKeyId);
      changed(apiKeyId, partnerId);
    }
  }

  return {
    async issue(key) {
      futureExpiry(key.expiresAt);
      const partner = await prisma.partnerOrganization.findUnique({ where: { id: key.partnerId }, select: { id: true } });
      if (!partner) throw notFound("No such partner");
      const scopes = [...new Set(key.scopes)];
      const { secret, tokenPrefix, secretHash } = newSecret();
      try {
        const created = await prisma.$transaction(async (tx) => {
          const row = await tx.apiKey.create({
            data: {
              keyName: key.keyName,
              tokenPrefix,
              scopes,
              expiresAt: key.expiresAt,
              partnerId: key.partnerId,
              createdById: key.actorUserId,
              secretHash,
            },
            select: { id: true },
          });
          await recordAudit(tx, {
            action: "apiKeyCreated",
            actorUserId: key.actorUserId,
            partnerId: key.partnerId,
            apiKeyId: row.id,
            detail: { keyName: key.keyName, scopes, expiresAt: key.expiresAt?.toISOString() ?? null },
          });
          return row;
        });
        changed(created.id, key.partnerId);
        return { apiKeyId: created.id, secret };
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict("This partner already has a key with that name", { field: "keyName" });
        throw error;
      }
    },

    async rotate(apiKeyId, gracePeriodSeconds, actorUserId) {
      const at = now();
      const current = await prisma.apiKey.findUnique({
        where: { id: apiKeyId },
        select: { secretHash: true, revokedAt: true, expiresAt: true, partnerId: true },
      });
      if (!current) throw notFound("No such API key");
      if (current.revokedAt) throw conflict("A revoked key cannot be rotated", { reason: "REVOKED" });
      if (current.expiresAt && current.expiresAt.getTime() <= at.getTime()) {
        throw conflict("An expired key cannot be rotated", { reason: "EXPIRED" });
      }
      const previousSecretExpiresAt = new Date(at.getTime() + gracePeriodSeconds * 1000);
      const { secret, tokenPrefix, secretHash } = newSecret();
      try {
        await prisma.$transaction(async (tx) => {
          // Conditional on the hash read above: a concurrent rotate or revoke makes this one fail
          // instead of silently dropping the other's secret.
          await tx.apiKey.update({
            where: { id: apiKeyId, secretHash: current.secretHash, revokedAt: null },
            data: {
              secretHash,
              tokenPrefix,
              previousSecretHash: current.secretHash,
              previousSecretExpiresAt,
              rotatedAt: at,
            },
            select: { id: true },
          });
          await recordAudit(tx, {
            action: "apiKeyRotated",
            actorUserId,
            partnerId: current.partnerId,
            apiKeyId,
            detail: { gracePeriodSeconds, previousSecretExpiresAt: previousSecretExpiresAt.toISOString() },
          });
        });
      } catch (error) {
        if (isRecordNotFound(error)) throw conflict("The key changed while rotating it; try again");
        throw error;
      }
      await options.verifier.invalidateKey(apiKeyId);
      changed(apiKeyId, current.partnerId);
      return { apiKeyId, secret };
    },

    async revoke(apiKeyId, actorUserId) {
      const key = await prisma.apiKey.findUnique({ where: { id: apiKeyId }, select: { partnerId: true } });
      if (!key) throw notFound("No such API key");
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.apiKey.updateMany({
          where: { id: apiKeyId, revokedAt: null },
          data: { revokedAt: now(), isActive: false },
        });
        // Already revoked: nothing changes and no second event is written.
        if (count === 1) await recordAudit(tx, { action: "apiKeyRevoked", actorUserId, partnerId: key.partnerId, apiKeyId });
      });
      await options.verifier.invalidateKey(apiKeyId);
      changed(apiKeyId, key.partnerId);
    },

    async update(apiKeyId, changes, editor) {
      futureExpiry(changes.expiresAt);
      const wanted = {
        keyName: changes.keyName,
        scopes: changes.scopes ? [...new Set(changes.scopes)] : undefined,
        expiresAt: changes.expiresAt,
      };
      let partnerId: string;
      try {
        partnerId = await prisma.$transaction(async (tx) => {
          // Locked, so a concurrent edit cannot slip a scope past the narrowing check.
          const [current] = await tx.$queryRaw<
            Array<{ partnerId: string; keyName: string; scopes: string[]; expiresAt: Date | null; revokedAt: Date | null }>
          >`SELECT "partnerId", "keyName", scopes, "expiresAt", "revokedAt" FROM "ApiKey" WHERE id = ${apiKeyId} FOR UPDATE`;
          if (!current) throw notFound("No such API key");
          if (current.revokedAt) throw conflict("A revoked key cannot be changed", { reason: "REVOKED" });
          const added = (wanted.scopes ?? []).filter((scope) => !current.scopes.includes(scope));
          if (added.length > 0 && !editor.mayWidenScopes) {
            throw forbidden(`Only an admin may add scopes to a key (${added.join(", ")})`);
          }
          const changedFields = diff(
            { keyName: current.keyName, scopes: current.scopes, expiresAt: current.expiresAt },
            wanted,
          );
          if (Object.keys(changedFields).length === 0) return current.partnerId;
          await tx.apiKey.update({
            where: { id: apiKeyId },
            data: { keyName: wanted.keyName, scopes: wanted.scopes, expiresAt: wanted.expiresAt },
            select: { id: true },
          });
          await recordAudit(tx, {
            action: "apiKeyUpdated",
            actorUserId: editor.userId,
            partnerId: current.partnerId,
            apiKeyId,
            detail: changedFields,
          });
          return current.partnerId;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict("This partner already has a key with that name", { field: "keyName" });
        throw error;
      }
      await options.verifier.invalidateKey(apiKeyId);
      changed(apiKeyId, partnerId);
    },

    disable: (apiKeyId, actorUserId) => setActive(apiKeyId, false, actorUserId),
    enable: (apiKeyId, actorUserId) => setActive(apiKeyId, true, actorUserId),
  };
}
