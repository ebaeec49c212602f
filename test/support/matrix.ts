import { encodeGlobalID } from "@pothos/plugin-relay";
import type { Role } from "../../src/generated/prisma/enums.js";
import type { GraphQLResponse, TestServer } from "./server.js";
import { createUser } from "./users.js";

/** Everyone the authorization matrix asks: each role of partners A and B, staff, a loner, nobody. */
export const ACTORS = [
  "admin",
  "support",
  "partnerAdminA",
  "developerA",
  "partnerAdminB",
  "developerB",
  "noPartner",
  "signedOut",
] as const;
export type Actor = (typeof ACTORS)[number];

export interface WorldPartner {
  id: string;
  globalId: string;
}

export interface WorldUser {
  id: string;
  username: string;
  globalId: string;
  token: string;
}

export interface World {
  server: TestServer;
  partnerA: WorldPartner;
  partnerB: WorldPartner;
  users: Record<Exclude<Actor, "signedOut">, WorldUser>;
  /** The session token of an actor; undefined when signed out. */
  token(actor: Actor): string | undefined;
  globalId(typeName: string, id: string): string;
}

export interface MatrixOperation {
  query: string;
  variables?: Record<string, unknown>;
  /** Send this token instead of the actor's usual one (e.g. a fresh session that logout may end). */
  token?: string;
  /**
   * Subscriptions only: the harness subscribes over SSE and judges the first result it streams
   * (a denial answers at once); this is called until an allowed subscriber receives an event.
   */
  trigger?: () => Promise<unknown>;
}

export interface MatrixRow {
  /**
   * What the row covers: a root field ("Query.partners", "Mutation.createPartner",
   * "Subscription.usageLogCreated") or a sensitive field ("User.email", "APIKey.events").
   * Every root field of the schema needs at least one row.
   */
  field: string;
  /** Which case of the field this is, e.g. "partner B's record by id". */
  case: string;
  /** Actors who may; everyone else must be denied. */
  allow: readonly Actor[];
  /**
   * Builds the operation for one actor. Called once per actor, so a write can create a fresh
   * target each time (through `world.server.app.services.prisma`) and is not spoiled by the last.
   */
  operation(world: World, actor: Actor): MatrixOperation | Promise<MatrixOperation>;
  /**
   * Whether the response shows the operation was allowed. The default: no errors and the root
   * field's value is neither null nor an empty list/connection.
   */
  allowed?(response: GraphQLResponse, world: World, actor: Actor): boolean;
  /**
   * Checks a denied response further (beyond "not allowed"). The default: a denied write answers
   * FORBIDDEN, or UNAUTHENTICATED when signed out.
   */
  denied?(response: GraphQLResponse, world: World, actor: Actor): void;
}

const ROLE_OF: Record<Exclude<Actor, "signedOut">, { role: Role; partner: "A" | "B" | null }> = {
  admin: { role: "admin", partner: null },
  support: { role: "support", partner: null },
  partnerAdminA: { role: "partnerAdmin", partner: "A" },
  developerA: { role: "developer", partner: "A" },
  partnerAdminB: { role: "partnerAdmin", partner: "B" },
  developerB: { role: "developer", partner: "B" },
  noPartner: { role: "developer", partner: null },
};

/** Two partners with a member of each role, and staff, on the given server. */
export async function createWorld(server: TestServer): Promise<World> {
  const prisma = server.app.services.prisma;
  const globalId = (typeName: string, id: string) => encodeGlobalID(typeName, id);
  const a = await prisma.partnerOrganization.create({ data: { name: "Partner A" } });
  const b = await prisma.partnerOrganization.create({ data: { name: "Partner B" } });
  const users = {} as World["users"];
  for (const [actor, spec] of Object.entries(ROLE_OF) as Array<[Exclude<Actor, "signedOut">, (typeof ROLE_OF)["admin"]]>) {
    const partnerId = spec.partner === "A" ? a.id : spec.partner === "B" ? b.id : null;
    const user = await createUser(server, `m-${actor.toLowerCase()}`, spec.role, partnerId);
    users[actor] = { id: user.id, username: user.username, globalId: user.globalId, token: user.token };
  }
  await prisma.partnerOrganization.update({ where: { id: a.id }, data: { primaryContactId: users.partnerAdminA.id } });
  await prisma.partnerOrganization.update({ where: { id: b.id }, data: { primaryContactId: users.partnerAdminB.id } });
  return {
    server,
    partnerA: { id: a.id, globalId: globalId("PartnerOrganization", a.id) },
    partnerB: { id: b.id, globalId: globalId("PartnerOrganization", b.id) },
    users,
    token: (actor) => (actor === "signedOut" ? undefined : users[actor].token),
    globalId,
  };
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object" && value !== null && "edges" in value) {
    return ((value as { edges: unknown[] }).edges ?? []).length === 0;
  }
  return false;
}

/** The default judgement: no errors, and the first root field holds something. */
export function defaultAllowed(response: GraphQLResponse): boolean {
  if (response.errors?.length) return false;
  const data = response.data ?? {};
  const first = Object.values(data)[0];
  return !isEmpty(first);
}

export const staff: readonly Actor[] = ["admin", "support"];
export const partnerAMembers: readonly Actor[] = ["partnerAdminA", "developerA"];

/** Whether a response holds the given (global) id anywhere in its data, and no errors. */
export function showsId(response: GraphQLResponse, id: string): boolean {
  return !response.errors?.length && JSON.stringify(response.data ?? null).includes(JSON.stringify(id));
}

/** A denied read answers as if the record did not exist: no error, just null or an omission. */
export function deniedSilently(response: GraphQLResponse): void {
  if (response.errors?.length) throw new Error(`a denied read answered errors: ${JSON.stringify(response.errors)}`);
}
