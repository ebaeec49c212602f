import { randomBytes } from "node:crypto";
import type { Role } from "../../src/generated/prisma/enums.js";
import type { MatrixRow, World } from "../support/matrix.js";
import { deniedSilently, partnerAMembers, showsId, staff } from "../support/matrix.js";

/** A fresh user for one write, so no actor's attempt is spoiled by another's. */
async function freshUser(world: World, role: Role, partnerId: string | null) {
  const name = `fresh-${randomBytes(5).toString("hex")}`;
  const user = await world.server.app.services.prisma.user.create({
    data: { username: name, email: `${name}@example.test`, password: "not-a-hash", role, partnerId },
  });
  return world.globalId("User", user.id);
}

const NODE_USER = (fields: string) => `query ($id: ID!) { node(id: $id) { ... on User { ${fields} } } }`;

const rows: MatrixRow[] = [
  {
    field: "User.email",
    case: "developerA's email",
    allow: [...staff, ...partnerAMembers],
    operation: (world) => ({ query: NODE_USER("email"), variables: { id: world.users.developerA.globalId } }),
    allowed: (response) => !response.errors && /"email":"m-developera@/.test(JSON.stringify(response.data)),
    denied: deniedSilently,
  },
  {
    field: "User.email",
    case: "an admin's email",
    allow: [...staff],
    operation: (world) => ({ query: NODE_USER("email"), variables: { id: world.users.admin.globalId } }),
    allowed: (response) => !response.errors && /"email":"m-admin@/.test(JSON.stringify(response.data)),
    denied: deniedSilently,
  },
  {
    field: "User.email",
    case: "the viewer's own email",
    allow: ["admin", "support", "partnerAdminA", "developerA", "partnerAdminB", "developerB", "noPartner"],
    operation: () => ({ query: `{ viewer { email } }` }),
    allowed: (response) => !response.errors && /"email":"m-/.test(JSON.stringify(response.data)),
    denied: deniedSilently,
  },
  {
    field: "User.partner",
    case: "developerA's partner",
    allow: [...staff, ...partnerAMembers],
    operation: (world) => ({ query: NODE_USER("partner { id }"), variables: { id: world.users.developerA.globalId } }),
    allowed: (response, world) => showsId(response, world.partnerA.globalId),
    denied: deniedSilently,
  },
  {
    field: "PartnerOrganization.members",
    case: "partner A's members",
    allow: [...staff, ...partnerAMembers],
    operation: (world) => ({
      query: `query ($id: ID!) { partner(id: $id) { members { totalCount edges { node { id } } } } }`,
      variables: { id: world.partnerA.globalId },
    }),
    allowed: (response, world) =>
      showsId(response, world.users.developerA.globalId) &&
      (response.data as { partner: { members: { totalCount: number } } }).partner.members.totalCount === 2,
    denied: deniedSilently,
  },
  {
    field: "Mutation.setUserRole",
    case: "promote a developer of partner A to partnerAdmin",
    allow: ["admin"],
    operation: async (world) => ({
      query: `mutation ($id: ID!) { setUserRole(userId: $id, role: partnerAdmin) { id role } }`,
      variables: { id: await freshUser(world, "developer", world.partnerA.id) },
    }),
  },
  {
    field: "Mutation.setUserPartner",
    case: "place a developer without a partner in partner B",
    allow: ["admin"],
    operation: async (world) => ({
      query: `mutation ($id: ID!, $partnerId: ID) { setUserPartner(userId: $id, partnerId: $partnerId) { id partner { id } } }`,
      variables: { id: await freshUser(world, "developer", null), partnerId: world.partnerB.globalId },
    }),
  },
];

export default rows;
