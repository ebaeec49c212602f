import SchemaBuilder from "@pothos/core";
import PrismaPlugin from "@pothos/plugin-prisma";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import ValidationPlugin from "@pothos/plugin-validation";
import { DateTimeResolver, EmailAddressResolver, JSONResolver, SafeIntResolver } from "graphql-scalars";
import { z } from "zod";
import { admits } from "./access.js";
import type { Context, SignedInContext } from "./context.js";
import type PrismaTypes from "../generated/pothos-types.js";
import { getDatamodel } from "../generated/pothos-types.js";
import { badInput, forbidden, unauthenticated } from "../errors.js";

/** `nodes(ids:)` looks up at most this many records in one call. */
export const MAX_NODE_IDS = 100;

export interface AuthScopes {
  /** Any signed-in user. */
  signedIn: boolean;
  admin: boolean;
  /** The company's staff: admin or support. */
  staff: boolean;
  /** A partnerAdmin or developer of the given partner. */
  partnerMember: string;
  /** A partnerAdmin of the given partner. */
  partnerAdmin: string;
  /**
   * A partnerAdmin of the given partner while that partner is active: the scope for every write a
   * partner's member may make (a suspended partner's members keep read access only).
   */
  activePartnerAdmin: string;
  /** The given user id is the viewer. */
  self: string;
  /** The company's API gateway: a service credential, or an admin acting for it. */
  gateway: boolean;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: AuthScopes;
  AuthContexts: { signedIn: SignedInContext; admin: SignedInContext; staff: SignedInContext };
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    EmailAddress: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
    SafeInt: { Input: number; Output: number };
    ID: { Input: string; Output: string | number };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ValidationPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    // A page is at most 100 items (a larger `first` is clamped); 20 when none is asked for.
    maxConnectionSize: 100,
    defaultConnectionSize: 20,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    nodeQueryOptions: { nullable: true },
    nodesQueryOptions: {
      nullable: { list: false, items: true },
      args: {
        ids: {
          description: `At most ${MAX_NODE_IDS}.`,
          validate: z.array(z.unknown()).max(MAX_NODE_IDS, `At most ${MAX_NODE_IDS} ids at a time`),
        },
      },
    },
  },
  scopeAuth: {
    authorizeOnSubscribe: true,
    // Each scope as access.ts defines who it admits, so lists and lookups filter by the same rules.
    authScopes: (ctx) => ({
      signedIn: admits("signedIn", ctx),
      admin: admits("admin", ctx),
      staff: admits("staff", ctx),
      gateway: admits("gateway", ctx),
      partnerMember: (partnerId) => admits("partnerMember", ctx, partnerId),
      partnerAdmin: (partnerId) => admits("partnerAdmin", ctx, partnerId),
      self: (userId) => admits("self", ctx, userId),
      activePartnerAdmin: async (partnerId) =>
        admits("partnerAdmin", ctx, partnerId) &&
        (await ctx.prisma.partnerOrganization.count({ where: { id: partnerId, status: "active" } })) === 1,
    }),
    unauthorizedError: (_parent, ctx) => (ctx.viewer || ctx.service ? forbidden() : unauthenticated()),
  },
  validation: {
    validationError: (result) => {
      const issues = result.issues.map((issue) => ({
        path: (issue.path ?? []).map((segment) =>
          typeof segment === "object" ? String(segment.key) : String(segment),
        ),
        message: issue.message,
      }));
      const first = issues[0];
      const where = first && first.path.length > 0 ? `${first.path.join(".")}: ` : "";
      return badInput(`${where}${first?.message ?? "Invalid input"}`, { issues });
    },
  },
});

builder.addScalarType("DateTime", DateTimeResolver);
builder.addScalarType("EmailAddress", EmailAddressResolver);
builder.addScalarType("JSON", JSONResolver);
// Sums of request counts outgrow GraphQL's 32-bit Int; SafeInt carries up to 2^53 - 1.
builder.addScalarType("SafeInt", SafeIntResolver);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
