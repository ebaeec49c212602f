import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { Actor, MatrixRow, World } from "../support/matrix.js";
import { ACTORS, staff } from "../support/matrix.js";
import { errorCodes, type GraphQLResponse } from "../support/server.js";

const fresh = (label: string) => `${label}-${randomBytes(5).toString("hex")}`;

/** A developer made directly, for a write aimed at it; answers its global id. */
async function freshUser(world: World, partnerId: string | null) {
  return world.globalId("User", (await freshUserRow(world, partnerId)).id);
}

async function freshUserRow(world: World, partnerId: string | null) {
  const name = fresh("target");
  return world.server.app.services.prisma.user.create({
    data: { username: name, email: `${name}@example.test`, password: null, role: "developer", partnerId },
    select: { id: true },
  });
}

const INVITE = `mutation ($email: String!, $role: Role!, $partnerId: ID) {
  inviteUser(email: $email, role: $role, partnerId: $partnerId) { token email role expiresAt }
}`;

const rows: MatrixRow[] = [
  {
    field: "Mutation.createPartner",
    case: "a new partner whose primary contact is invited by email",
    allow: ["admin"],
    operation: (_world, actor) => {
      const name = fresh(`contact-${actor.toLowerCase()}`);
      return {
        query: `mutation ($input: CreatePartnerInput!) {
          createPartner(input: $input) { partner { id name status supportTier primaryContact { id } } invitation { token } }
        }`,
        variables: {
          input: { name: `Created by ${actor}`, supportTier: "premium", primaryContact: { email: `${name}@example.test`, username: name } },
        },
      };
    },
  },
  {
    field: "Mutation.createPartner",
    case: "a new partner whose primary contact is a developer without a partner",
    allow: ["admin"],
    operation: async (world, actor) => ({
      query: `mutation ($input: CreatePartnerInput!) { createPartner(input: $input) { partner { id } invitation { token } } }`,
      variables: { input: { name: `Moved in by ${actor}`, primaryContact: { userId: await freshUser(world, null) } } },
    }),
  },
  {
    field: "Mutation.inviteUser",
    case: "a developer of partner A",
    allow: ["admin", "partnerAdminA"],
    operation: (world) => ({
      query: INVITE,
      variables: { email: `${fresh("invitee")}@example.test`, role: "developer", partnerId: world.partnerA.globalId },
    }),
  },
  {
    field: "Mutation.inviteUser",
    case: "a partnerAdmin of partner A (admins only)",
    allow: ["admin"],
    operation: (world) => ({
      query: INVITE,
      variables: { email: `${fresh("invitee")}@example.test`, role: "partnerAdmin", partnerId: world.partnerA.globalId },
    }),
  },
  {
    field: "Mutation.inviteUser",
    case: "a support user (admins only)",
    allow: ["admin"],
    operation: () => ({ query: INVITE, variables: { email: `${fresh("invitee")}@example.test`, role: "support" } }),
  },
  {
    field: "Mutation.inviteUser",
    case: "a developer of partner B",
    allow: ["admin", "partnerAdminB"],
    operation: (world) => ({
      query: INVITE,
      variables: { email: `${fresh("invitee")}@example.test`, role: "developer", partnerId: world.partnerB.globalId },
    }),
  },
  {
    field: "Mutation.acceptInvitation",
    case: "redeeming an invitation (the token is the credential)",
    allow: ACTORS,
    operation: async (world) => {
      const { token } = await world.server.app.services.invitations.invite({
        email: `${fresh("joiner")}@example.test`,
        role: "developer",
        partnerId: null,
        actorUserId: world.users.admin.id,
      });
      return {
        query: `mutation ($token: String!, $username: String!, $password: String!) {
          acceptInvitation(token: $token, username: $username, password: $password) { token user { id role } }
        }`,
        variables: { token, username: fresh("joiner"), password: "a long enough password" },
      };
    },
  },
  {
    field: "Mutation.createPasswordReset",
    case: "a developer",
    allow: ["admin"],
    operation: async (world) => ({
      query: `mutation ($id: ID!) { createPasswordReset(userId: $id) { token expiresAt user { id } } }`,
      variables: { id: await freshUser(world, null) },
    }),
  },
  {
    field: "Mutation.resetPassword",
    case: "using a reset link (the token is the credential)",
    allow: ACTORS,
    operation: async (world) => {
      const { id } = await freshUserRow(world, null);
      const { token } = await world.server.app.services.invitations.createPasswordReset({
        userId: id,
        actorUserId: world.users.admin.id,
      });
      return {
        query: `mutation ($token: String!) { resetPassword(token: $token, password: "another long password") }`,
        variables: { token },
      };
    },
  },
  {
    field: "Query.users",
    case: "developerA is listed",
    allow: [...staff, "partnerAdminA"],
    operation: () => ({ query: `{ users(first: 100) { totalCount edges { node { id } } } }` }),
    allowed: (response, world) => JSON.stringify(response.data).includes(JSON.stringify(world.users.developerA.globalId)),
    denied: directoryDenied,
  },
  {
    field: "Query.users",
    case: "an admin is listed (staff only)",
    allow: staff,
    operation: () => ({ query: `{ users(first: 100) { edges { node { id } } } }` }),
    allowed: (response, world) => JSON.stringify(response.data).includes(JSON.stringify(world.users.admin.globalId)),
    denied: directoryDenied,
  },
  {
    field: "Query.users",
    case: "developerB by a search that matches only them, counted",
    allow: [...staff, "partnerAdminB"],
    operation: () => ({ query: `{ users(search: "m-developerb") { totalCount edges { node { id } } } }` }),
    allowed: (response, world) =>
      JSON.stringify(response.data).includes(JSON.stringify(world.users.developerB.globalId)) &&
      (response.data as { users: { totalCount: number } }).users.totalCount === 1,
    denied: (response, world, actor) => {
      directoryDenied(response, world, actor);
      if (actor !== "signedOut") expect((response.data as { users: { totalCount: number } }).users.totalCount).toBe(0);
    },
  },
];

/** A denied directory read: signed out is UNAUTHENTICATED; anyone else sees nobody they may not. */
function directoryDenied(response: GraphQLResponse, _world: World, actor: Actor) {
  if (actor === "signedOut") expect(errorCodes(response)).toEqual(["UNAUTHENTICATED"]);
  else expect(response.errors).toBeUndefined();
}

export default rows;
