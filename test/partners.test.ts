import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { SESSION_ENDED_CLOSE_CODE } from "../src/http/websocket.js";
import { createUser, TEST_PASSWORD } from "./support/users.js";

const PARTNERS = /* GraphQL */ `
  query Partners($first: Int, $after: String, $status: PartnerStatus, $search: String) {
    partners(first: $first, after: $after, status: $status, search: $search) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id name status supportTier } }
    }
  }
`;
const UPDATE = /* GraphQL */ `
  mutation Update($id: ID!, $input: UpdatePartnerInput!) {
    updatePartner(id: $id, input: $input) { id name status supportTier primaryContact { id } }
  }
`;
const CREATE = /* GraphQL */ `
  mutation Create($input: CreatePartnerInput!) {
    createPartner(input: $input) { partner { id name status supportTier primaryContact { username } } }
  }
`;
const SET_ROLE = /* GraphQL */ `
  mutation SetRole($userId: ID!, $role: Role!) { setUserRole(userId: $userId, role: $role) { id role } }
`;
const SET_PARTNER = /* GraphQL */ `
  mutation SetPartner($userId: ID!, $partnerId: ID, $replacement: ID) {
    setUserPartner(userId: $userId, partnerId: $partnerId, replacementContactId: $replacement) { id partner { id } }
  }
`;

let server: TestServer;
let world: World;
let admin: string;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  admin = world.users.admin.token;
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.app.services.prisma;

async function signIn(login: string): Promise<string> {
  const response = await server.gql<{ login: { token: string } }>(
    `mutation ($input: LoginInput!) { login(input: $input) { token } }`,
    { input: { login, password: TEST_PASSWORD } },
  );
  return response.data!.login.token;
}

async function newPartner(name: string, extra: { status?: "active" | "suspended" } = {}) {
  const created = await prisma().partnerOrganization.create({ data: { name, ...extra } });
  return { id: created.id, globalId: world.globalId("PartnerOrganization", created.id) };
}

describe("partners query", () => {
  it("pages through the partners ordered by name, with a total that matches the filter", async () => {
    for (const name of ["Zeta Corp", "Alpha Ltd", "Mid Industries"]) await newPartner(name);
    const names: string[] = [];
    let after: string | null = null;
    let total = 0;
    do {
      const page: { data?: Record<string, any> | null; errors?: unknown } = await server.gql(PARTNERS, { first: 2, after }, admin);
      expect(page.errors).toBeUndefined();
      const partners = page.data!.partners;
      total = partners.totalCount;
      names.push(...partners.edges.map((edge: { node: { name: string } }) => edge.node.name));
      after = partners.pageInfo.hasNextPage ? partners.pageInfo.endCursor : null;
    } while (after);
    expect(names).toHaveLength(total);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(names).toEqual(expect.arrayContaining(["Partner A", "Partner B", "Zeta Corp", "Alpha Ltd", "Mid Industries"]));

    const search = await server.gql(PARTNERS, { search: "INDUSTR" }, admin);
    expect(search.data!.partners.edges.map((edge: { node: { name: string } }) => edge.node.name)).toEqual(["Mid Industries"]);
    expect(search.data!.partners.totalCount).toBe(1);
  });

  it("shows a partner's member only their own partner, and counts only that", async () => {
    const response = await server.gql(PARTNERS, { first: 100 }, world.users.developerA.token);
    expect(response.data!.partners.totalCount).toBe(1);
    expect(response.data!.partners.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([
      world.partnerA.globalId,
    ]);
  });

  it("filters by status in the database query", async () => {
    const suspended = await newPartner("Dormant Co", { status: "suspended" });
    const response = await server.gql(PARTNERS, { status: "suspended", first: 100 }, admin);
    expect(response.data!.partners.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([
      suspended.globalId,
    ]);
    expect(response.data!.partners.totalCount).toBe(1);
  });

  it("refuses an oversized search", async () => {
    expect(errorCodes(await server.gql(PARTNERS, { search: "x".repeat(500) }, admin))).toEqual(["BAD_USER_INPUT"]);
  });
});

describe("createPartner", () => {
  it("creates an active, standard partner by default, and validates the name", async () => {
    const primaryContact = { email: "boss@initech.example", username: "initech-boss" };
    const created = await server.gql(CREATE, { input: { name: "  Initech  ", primaryContact } }, admin);
    expect(created.data!.createPartner.partner).toMatchObject({
      name: "Initech",
      status: "active",
      supportTier: "standard",
      primaryContact: { username: "initech-boss" },
    });
    const blank = { name: "   ", primaryContact: { email: "boss@blank.example", username: "blank-boss" } };
    expect(errorCodes(await server.gql(CREATE, { input: blank }, admin))).toEqual(["BAD_USER_INPUT"]);
  });
});

describe("updatePartner", () => {
  it("lets the primary contact rename their active partner and change its primary contact to another member", async () => {
    const partner = await newPartner("Contact Co");
    const contact = await createUser(server, "contact-co-admin", "partnerAdmin", partner.id);
    const colleague = await createUser(server, "contact-co-dev", "developer", partner.id);
    await prisma().partnerOrganization.update({ where: { id: partner.id }, data: { primaryContactId: contact.id } });

    const renamed = await server.gql(UPDATE, { id: partner.globalId, input: { name: "Contact Company" } }, contact.token);
    expect(renamed.errors).toBeUndefined();
    expect(renamed.data!.updatePartner).toMatchObject({ name: "Contact Company", primaryContact: { id: contact.globalId } });

    const handedOver = await server.gql(
      UPDATE,
      { id: partner.globalId, input: { primaryContactId: colleague.globalId } },
      contact.token,
    );
    expect(handedOver.data!.updatePartner.primaryContact).toEqual({ id: colleague.globalId });

    // No longer the primary contact: no more edits.
    const after = await server.gql(UPDATE, { id: partner.globalId, input: { name: "Mine again" } }, contact.token);
    expect(errorCodes(after)).toEqual(["FORBIDDEN"]);
    expect((await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: partner.id } })).name).toBe("Contact Company");
  });

  it("refuses a partnerAdmin who is not the primary contact, and changes nothing", async () => {
    const other = await createUser(server, "second-admin-a", "partnerAdmin", world.partnerA.id);
    const response = await server.gql(UPDATE, { id: world.partnerA.globalId, input: { name: "Hijacked" } }, other.token);
    expect(errorCodes(response)).toEqual(["FORBIDDEN"]);
    expect((await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: world.partnerA.id } })).name).toBe("Partner A");
  });

  it("checks each field: status or supportTier from a primary contact refuses the whole change", async () => {
    for (const input of [{ name: "Renamed A", status: "suspended" }, { name: "Renamed A", supportTier: "enterprise" }]) {
      const response = await server.gql(UPDATE, { id: world.partnerA.globalId, input }, world.users.partnerAdminA.token);
      expect(errorCodes(response)).toEqual(["FORBIDDEN"]);
    }
    const stored = await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: world.partnerA.id } });
    expect(stored).toMatchObject({ name: "Partner A", status: "active", supportTier: "standard" });
  });

  it("lets an admin change status and supportTier", async () => {
    const partner = await newPartner("Tiered");
    const response = await server.gql(
      UPDATE,
      { id: partner.globalId, input: { status: "suspended", supportTier: "enterprise" } },
      admin,
    );
    expect(response.data!.updatePartner).toMatchObject({ status: "suspended", supportTier: "enterprise", name: "Tiered" });
  });

  it("refuses a primary contact who is not a member of the partner", async () => {
    for (const user of [world.users.developerB, world.users.support]) {
      const response = await server.gql(UPDATE, { id: world.partnerA.globalId, input: { primaryContactId: user.globalId } }, admin);
      expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
    }
    const notAUser = await server.gql(UPDATE, { id: world.partnerA.globalId, input: { primaryContactId: world.partnerB.globalId } }, admin);
    expect(errorCodes(notAUser)).toEqual(["BAD_USER_INPUT"]);
    const stored = await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: world.partnerA.id } });
    expect(stored.primaryContactId).toBe(world.users.partnerAdminA.id);
  });

  it("answers NOT_FOUND to an admin for a partner that does not exist", async () => {
    const missing = world.globalId("PartnerOrganization", "00000000-0000-7000-8000-000000000000");
    expect(errorCodes(await server.gql(UPDATE, { id: missing, input: { name: "x" } }, admin))).toEqual(["NOT_FOUND"]);
  });
});

describe("a suspended partner", () => {
  it("keeps its data readable by its members but refuses their writes", async () => {
    const partner = await newPartner("Paused Inc");
    const contact = await createUser(server, "paused-admin", "partnerAdmin", partner.id);
    await prisma().partnerOrganization.update({ where: { id: partner.id }, data: { primaryContactId: contact.id } });
    expect(errorCodes(await server.gql(UPDATE, { id: partner.globalId, input: { name: "Paused" } }, contact.token))).toEqual([]);

    await server.gql(UPDATE, { id: partner.globalId, input: { status: "suspended" } }, admin);
    const refused = await server.gql(UPDATE, { id: partner.globalId, input: { name: "Still mine?" } }, contact.token);
    expect(errorCodes(refused)).toEqual(["FORBIDDEN"]);
    const read = await server.gql(`query ($id: ID!) { partner(id: $id) { name status } }`, { id: partner.globalId }, contact.token);
    expect(read.data!.partner).toEqual({ name: "Paused", status: "suspended" });

    // An admin may still act on it, e.g. to reactivate it; then the contact may write again.
    await server.gql(UPDATE, { id: partner.globalId, input: { status: "active" } }, admin);
    expect(errorCodes(await server.gql(UPDATE, { id: partner.globalId, input: { name: "Back" } }, contact.token))).toEqual([]);
  });
});

describe("setUserRole", () => {
  it("keeps the invariants: staff have no partner, a partnerAdmin has one", async () => {
    const loner = await createUser(server, "role-loner", "developer", null);
    expect(errorCodes(await server.gql(SET_ROLE, { userId: loner.globalId, role: "partnerAdmin" }, admin))).toEqual([
      "BAD_USER_INPUT",
    ]);
    const member = await createUser(server, "role-member", "developer", world.partnerB.id);
    expect(errorCodes(await server.gql(SET_ROLE, { userId: member.globalId, role: "support" }, admin))).toEqual([
      "BAD_USER_INPUT",
    ]);
    expect((await prisma().user.findUniqueOrThrow({ where: { id: member.id } })).role).toBe("developer");

    const promoted = await server.gql(SET_ROLE, { userId: member.globalId, role: "partnerAdmin" }, admin);
    expect(promoted.data!.setUserRole).toEqual({ id: member.globalId, role: "partnerAdmin" });
    // The change ends the user's sessions; signed in again, they have the new role.
    expect(errorCodes(await server.gql(`{ viewer { role } }`, {}, member.token))).toEqual(["UNAUTHENTICATED"]);
    const again = await signIn(member.username);
    const viewer = await server.gql(`{ viewer { role } }`, {}, again);
    expect(viewer.data!.viewer.role).toBe("partnerAdmin");

    const staffed = await server.gql(SET_ROLE, { userId: loner.globalId, role: "support" }, admin);
    expect(staffed.data!.setUserRole.role).toBe("support");
  });

  it("refuses to demote the last admin with CONFLICT, and allows it when another admin remains", async () => {
    const self = world.users.admin;
    const alone = await server.gql(SET_ROLE, { userId: self.globalId, role: "support" }, admin);
    expect(errorCodes(alone)).toEqual(["CONFLICT"]);
    expect((await prisma().user.findUniqueOrThrow({ where: { id: self.id } })).role).toBe("admin");

    const second = await createUser(server, "second-admin", "admin", null);
    const demoted = await server.gql(SET_ROLE, { userId: second.globalId, role: "support" }, admin);
    expect(demoted.data!.setUserRole.role).toBe("support");
    expect(errorCodes(await server.gql(SET_ROLE, { userId: self.globalId, role: "support" }, admin))).toEqual(["CONFLICT"]);
  });

  it("answers NOT_FOUND for a user that does not exist", async () => {
    const missing = world.globalId("User", "00000000-0000-7000-8000-000000000000");
    expect(errorCodes(await server.gql(SET_ROLE, { userId: missing, role: "developer" }, admin))).toEqual(["NOT_FOUND"]);
  });
});

describe("setUserPartner", () => {
  it("moves a developer between partners; a primary contact leaves only by naming a replacement", async () => {
    const partner = await newPartner("Leavers Ltd");
    const dev = await createUser(server, "leaver", "developer", partner.id);
    const stayer = await createUser(server, "stayer", "partnerAdmin", partner.id);
    await prisma().partnerOrganization.update({ where: { id: partner.id }, data: { primaryContactId: dev.id } });
    const refused = await server.gql(SET_PARTNER, { userId: dev.globalId, partnerId: world.partnerB.globalId }, admin);
    expect(errorCodes(refused)).toEqual(["CONFLICT"]);

    // A stream opened with the old rights must not outlive them.
    const socket = server.ws({ lazy: false, connectionParams: { authorization: `Bearer ${dev.token}` } });
    await new Promise<void>((resolve) => socket.on("connected", () => resolve()));
    const socketClosed = new Promise<number>((resolve) => socket.on("closed", (event) => resolve((event as CloseEvent).code)));

    const moved = await server.gql(
      SET_PARTNER,
      { userId: dev.globalId, partnerId: world.partnerB.globalId, replacement: stayer.globalId },
      admin,
    );
    expect(moved.data!.setUserPartner).toEqual({ id: dev.globalId, partner: { id: world.partnerB.globalId } });
    expect((await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: partner.id } })).primaryContactId).toBe(stayer.id);
    expect(await socketClosed).toBe(SESSION_ENDED_CLOSE_CODE);
    expect(errorCodes(await server.gql(PARTNERS, { first: 100 }, dev.token))).toEqual(["UNAUTHENTICATED"]);

    // Signed in again: partner B is now the developer's, Leavers Ltd no longer.
    const read = await server.gql(PARTNERS, { first: 100 }, await signIn(dev.username));
    expect(read.data!.partners.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([world.partnerB.globalId]);

    const out = await server.gql(SET_PARTNER, { userId: dev.globalId, partnerId: null }, admin);
    expect(out.data!.setUserPartner.partner).toBeNull();
  });

  it("refuses staff in a partner, a partnerAdmin without one, and a partner that does not exist", async () => {
    const missingPartner = world.globalId("PartnerOrganization", "00000000-0000-7000-8000-000000000000");
    const cases: Array<[string, string | null]> = [
      [world.users.support.globalId, world.partnerA.globalId],
      [world.users.partnerAdminB.globalId, null],
      [world.users.noPartner.globalId, missingPartner],
    ];
    for (const [userId, partnerId] of cases) {
      expect(errorCodes(await server.gql(SET_PARTNER, { userId, partnerId }, admin))).toEqual(["BAD_USER_INPUT"]);
    }
    expect((await prisma().user.findUniqueOrThrow({ where: { id: world.users.partnerAdminB.id } })).partnerId).toBe(
      world.partnerB.id,
    );
  });
});
