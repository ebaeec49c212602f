import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INVITATION_TTL_MS, PASSWORD_RESET_TTL_MS } from "../src/domain/invitations.js";
import { SESSION_ENDED_CLOSE_CODE } from "../src/http/websocket.js";
import { seedDemoData } from "../src/seed.js";
import { createWorld, type World } from "./support/matrix.js";
import { sseStream } from "./support/streams.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createUser, TEST_PASSWORD } from "./support/users.js";

const CREATE = /* GraphQL */ `
  mutation ($input: CreatePartnerInput!) {
    createPartner(input: $input) {
      partner { id name supportTier primaryContact { id username role } members { totalCount } }
      invitation { token url expiresAt email role }
    }
  }
`;
const INVITE = /* GraphQL */ `
  mutation ($email: String!, $role: Role!, $partnerId: ID) {
    inviteUser(email: $email, role: $role, partnerId: $partnerId) { token url expiresAt email role }
  }
`;
const ACCEPT = /* GraphQL */ `
  mutation ($token: String!, $username: String!, $password: String!) {
    acceptInvitation(token: $token, username: $username, password: $password) {
      token user { id username role }
    }
  }
`;
const CREATE_RESET = /* GraphQL */ `
  mutation ($userId: ID!) { createPasswordReset(userId: $userId) { token url expiresAt user { id } } }
`;
const RESET = /* GraphQL */ `mutation ($token: String!, $password: String!) { resetPassword(token: $token, password: $password) }`;
const LOGIN = /* GraphQL */ `mutation ($login: String!, $password: String!) { login(input: { login: $login, password: $password }) { token } }`;
const SET_ROLE = /* GraphQL */ `
  mutation ($userId: ID!, $role: Role!, $replacement: ID) {
    setUserRole(userId: $userId, role: $role, replacementContactId: $replacement) { id role }
  }
`;
const SET_PARTNER = /* GraphQL */ `
  mutation ($userId: ID!, $partnerId: ID, $replacement: ID) {
    setUserPartner(userId: $userId, partnerId: $partnerId, replacementContactId: $replacement) { id }
  }
`;
const NEW_PASSWORD = "a brand new passphrase";

let server: TestServer;
let world: World;
let admin: string;
let clockOffsetMs = 0;
beforeAll(async () => {
  server = await startTestServer({
    now: () => new Date(Date.now() + clockOffsetMs),
    env: { INVITATION_URL_TEMPLATE: "https://portal.example.com/invite?token={token}" },
  });
  world = await createWorld(server);
  admin = world.users.admin.token;
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.app.services.prisma;
const data = <T = Record<string, any>>(response: { data?: unknown; errors?: unknown }) => {
  expect(response.errors).toBeUndefined();
  return response.data as T;
};
const auditActions = async (partnerId: string) =>
  (await prisma().auditEvent.findMany({ where: { partnerId }, orderBy: { createdAt: "asc" }, select: { action: true } })).map(
    (event) => event.action,
  );
const rawId = (globalId: string) => Buffer.from(globalId, "base64").toString().split(":").slice(1).join(":");

describe("createPartner with a primary contact", () => {
  it("invites a new email as the partner's partnerAdmin and contact, who signs in only after accepting", async () => {
    const created = data(
      await server.gql(CREATE, { input: { name: "Onboarded Ltd", supportTier: "premium", primaryContact: { email: " New.Boss@Example.test ", username: "new-boss" } } }, admin),
    ).createPartner;
    expect(created.partner).toMatchObject({
      name: "Onboarded Ltd",
      supportTier: "premium",
      primaryContact: { username: "new-boss", role: "partnerAdmin" },
      members: { totalCount: 1 },
    });
    const { token, url, email, role } = created.invitation;
    expect(token).toMatch(/^ppi_live_[0-9A-Za-z]{38}$/);
    expect(url).toBe(`https://portal.example.com/invite?token=${token}`);
    expect({ email, role }).toEqual({ email: "new.boss@example.test", role: "partnerAdmin" });
    expect(new Date(created.invitation.expiresAt).getTime()).toBeGreaterThan(Date.now() + INVITATION_TTL_MS - 60_000);

    // Only a keyed hash is kept.
    const stored = await prisma().invitation.findFirstOrThrow({ where: { email: "new.boss@example.test" } });
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(stored.tokenHash).not.toContain(token.slice(9, 20));

    // No password yet: no sign-in, however the password is guessed.
    expect(errorCodes(await server.gql(LOGIN, { login: "new-boss", password: "" }))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.gql(LOGIN, { login: "new-boss", password: "anything at all here" }))).toEqual(["UNAUTHENTICATED"]);

    const accepted = data(await server.gql(ACCEPT, { token, username: "the-boss", password: NEW_PASSWORD })).acceptInvitation;
    expect(accepted.user).toEqual({ id: created.partner.primaryContact.id, username: "the-boss", role: "partnerAdmin" });
    const viewer = data(await server.gql(`{ viewer { partner { id } } }`, {}, accepted.token)).viewer;
    expect(viewer).toEqual({ partner: { id: created.partner.id } });
    data(await server.gql(LOGIN, { login: "new.boss@example.test", password: NEW_PASSWORD }));
    expect(errorCodes(await server.gql(ACCEPT, { token, username: "again-boss", password: NEW_PASSWORD }))).toEqual(["BAD_USER_INPUT"]);

    expect(await auditActions(rawId(created.partner.id))).toEqual(["invitationCreated", "partnerCreated", "invitationAccepted"]);
  });

  it("moves an existing developer with no partner in, ending their sessions, with no invitation", async () => {
    const dev = await createUser(server, "lone-dev");
    const socket = server.ws({ lazy: false, onNonLazyError: () => {}, connectionParams: { authorization: `Bearer ${dev.token}` } });
    await new Promise<void>((resolve) => socket.on("connected", () => resolve()));
    const closed = new Promise<number>((resolve) => socket.on("closed", (event) => resolve((event as CloseEvent).code)));

    const created = data(await server.gql(CREATE, { input: { name: "Dev Shop", primaryContact: { userId: dev.globalId } } }, admin)).createPartner;
    expect(created.invitation).toBeNull();
    expect(created.partner.primaryContact).toEqual({ id: dev.globalId, username: "lone-dev", role: "partnerAdmin" });
    expect(await closed).toBe(SESSION_ENDED_CLOSE_CODE);
    expect(errorCodes(await server.gql(`{ viewer { id } }`, {}, dev.token))).toEqual(["UNAUTHENTICATED"]);
  });

  it("refuses a contact that is not exactly one existing partnerless developer or one new email, creating nothing", async () => {
    const before = await prisma().partnerOrganization.count();
    const taken = world.users.developerA;
    const attempts: Array<[Record<string, unknown>, string]> = [
      [{}, "BAD_USER_INPUT"],
      [{ email: "half@example.test" }, "BAD_USER_INPUT"],
      [{ userId: taken.globalId, email: "both@example.test", username: "both-ways" }, "BAD_USER_INPUT"],
      [{ userId: taken.globalId }, "BAD_USER_INPUT"], // already in partner A
      [{ userId: world.users.support.globalId }, "BAD_USER_INPUT"], // staff
      [{ userId: world.partnerA.globalId }, "BAD_USER_INPUT"], // not a User id
      [{ email: "m-developera@example.test", username: "someone-new" }, "CONFLICT"],
      [{ email: "someone-new@example.test", username: "M-DEVELOPERA" }, "CONFLICT"],
    ];
    for (const [primaryContact, code] of attempts) {
      const response = await server.gql(CREATE, { input: { name: "Never", primaryContact } }, admin);
      expect(errorCodes(response), JSON.stringify(primaryContact)).toEqual([code]);
    }
    expect(errorCodes(await server.gql(CREATE, { input: { name: "Never" } }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(await prisma().partnerOrganization.count()).toBe(before);
    expect(await prisma().user.count({ where: { email: { in: ["half@example.test", "both@example.test", "someone-new@example.test"] } } })).toBe(0);
  });
});

describe("a partner keeps its primary contact", () => {
  async function partnerWithContact(name: string) {
    const contact = await createUser(server, `${name}-contact`);
    const created = data(await server.gql(CREATE, { input: { name, primaryContact: { userId: contact.globalId } } }, admin)).createPartner;
    const partnerId = rawId(created.partner.id);
    const other = await createUser(server, `${name}-admin2`, "partnerAdmin", partnerId);
    const dev = await createUser(server, `${name}-dev`, "developer", partnerId);
    return { partner: created.partner.id as string, partnerId, contact, other, dev };
  }
  const contactOf = async (partnerId: string) =>
    (await prisma().partnerOrganization.findUniqueOrThrow({ where: { id: partnerId } })).primaryContactId;

  it("demoting the contact needs another partnerAdmin of the partner as replacement", async () => {
    const { partnerId, contact, other, dev } = await partnerWithContact("demote");
    const conflict = await server.gql(SET_ROLE, { userId: contact.globalId, role: "developer" }, admin);
    expect(errorCodes(conflict)).toEqual(["CONFLICT"]);
    expect(conflict.errors![0]!.extensions!.field).toBe("replacementContactId");
    for (const replacement of [dev.globalId, world.users.partnerAdminA.globalId, contact.globalId]) {
      expect(errorCodes(await server.gql(SET_ROLE, { userId: contact.globalId, role: "developer", replacement }, admin))).toEqual(["BAD_USER_INPUT"]);
    }
    expect(await contactOf(partnerId)).toBe(contact.id);
    expect((await prisma().user.findUniqueOrThrow({ where: { id: contact.id } })).role).toBe("partnerAdmin");

    data(await server.gql(SET_ROLE, { userId: contact.globalId, role: "developer", replacement: other.globalId }, admin));
    expect(await contactOf(partnerId)).toBe(other.id);
    // Any other member's changes need no replacement.
    data(await server.gql(SET_ROLE, { userId: dev.globalId, role: "partnerAdmin" }, admin));
  });

  it("moving the contact out needs a replacement too, and clearing the contact is refused", async () => {
    const { partner, partnerId, contact, other } = await partnerWithContact("mover");
    await prisma().user.update({ where: { id: contact.id }, data: { role: "developer" } });
    expect(errorCodes(await server.gql(SET_PARTNER, { userId: contact.globalId, partnerId: null }, admin))).toEqual(["CONFLICT"]);
    expect(await contactOf(partnerId)).toBe(contact.id);
    data(await server.gql(SET_PARTNER, { userId: contact.globalId, partnerId: null, replacement: other.globalId }, admin));
    expect(await contactOf(partnerId)).toBe(other.id);

    const cleared = await server.gql(
      `mutation ($id: ID!) { updatePartner(id: $id, input: { primaryContactId: null }) { id } }`,
      { id: partner },
      admin,
    );
    expect(errorCodes(cleared)).toEqual(["BAD_USER_INPUT"]);
    expect(await contactOf(partnerId)).toBe(other.id);
  });
});

describe("invitations", () => {
  it("a partnerAdmin invites a developer into its own partner; the invitee joins with their own username", async () => {
    const invited = data(
      await server.gql(INVITE, { email: "joiner@example.test", role: "developer", partnerId: world.partnerA.globalId }, world.users.partnerAdminA.token),
    ).inviteUser;
    expect(invited).toMatchObject({ email: "joiner@example.test", role: "developer" });
    const joined = data(await server.gql(ACCEPT, { token: invited.token, username: "joiner", password: NEW_PASSWORD })).acceptInvitation;
    expect(joined.user).toMatchObject({ username: "joiner", role: "developer" });
    // The answer's token is a working session, in partner A.
    expect(data(await server.gql(`{ viewer { username partner { id } } }`, {}, joined.token)).viewer).toEqual({
      username: "joiner",
      partner: { id: world.partnerA.globalId },
    });
    expect(await auditActions(world.partnerA.id)).toEqual(expect.arrayContaining(["invitationCreated", "invitationAccepted"]));
  });

  it("a partner's @live member list shows the invitee once they accept", async () => {
    const live = sseStream(
      server.url,
      `query ($id: ID!) @live { partner(id: $id) { id members { totalCount } } }`,
      { id: world.partnerB.globalId },
      world.users.partnerAdminB.token,
    );
    try {
      const first = await live.next();
      const before = (first!.data as { partner: { members: { totalCount: number } } }).partner.members.totalCount;
      const { token } = data(
        await server.gql(INVITE, { email: "live-joiner@example.test", role: "developer", partnerId: world.partnerB.globalId }, admin),
      ).inviteUser;
      data(await server.gql(ACCEPT, { token, username: "live-joiner", password: NEW_PASSWORD }));
      const next = await live.next();
      expect((next!.data as { partner: { members: { totalCount: number } } }).partner.members.totalCount).toBe(before + 1);
    } finally {
      live.close();
    }
  });

  it("refuses what a partnerAdmin may not grant, a registered email, and a role that does not fit the partner", async () => {
    const partnerAdmin = world.users.partnerAdminA.token;
    expect(errorCodes(await server.gql(INVITE, { email: "x1@example.test", role: "partnerAdmin", partnerId: world.partnerA.globalId }, partnerAdmin))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(INVITE, { email: "x2@example.test", role: "developer" }, partnerAdmin))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(INVITE, { email: "x3@example.test", role: "developer" }, world.users.developerA.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(INVITE, { email: "m-developerb@example.test", role: "developer" }, admin))).toEqual(["CONFLICT"]);
    expect(errorCodes(await server.gql(INVITE, { email: "x4@example.test", role: "support", partnerId: world.partnerA.globalId }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.gql(INVITE, { email: "x5@example.test", role: "partnerAdmin" }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.gql(INVITE, { email: "not an email", role: "developer" }, admin))).toEqual(["BAD_USER_INPUT"]);
    expect(await prisma().invitation.count({ where: { email: { startsWith: "x" } } })).toBe(0);
  });

  it("is used at most once, even by simultaneous redemptions", async () => {
    const { token } = data(await server.gql(INVITE, { email: "racer@example.test", role: "developer" }, admin)).inviteUser;
    const answers = await Promise.all(
      ["racer-1", "racer-2", "racer-3", "racer-4"].map((username) => server.gql(ACCEPT, { token, username, password: NEW_PASSWORD })),
    );
    expect(answers.filter((answer) => !answer.errors)).toHaveLength(1);
    expect(answers.filter((answer) => errorCodes(answer)[0] === "BAD_USER_INPUT")).toHaveLength(3);
    expect(await prisma().user.count({ where: { email: "racer@example.test" } })).toBe(1);
  });

  it("keeps working after a taken username, and stops at its expiry", async () => {
    const { token } = data(await server.gql(INVITE, { email: "late@example.test", role: "developer" }, admin)).inviteUser;
    const clash = await server.gql(ACCEPT, { token, username: "m-DeveloperA", password: NEW_PASSWORD });
    expect(errorCodes(clash)).toEqual(["CONFLICT"]);
    expect(clash.errors![0]!.extensions!.field).toBe("username");

    const { token: expiring } = data(await server.gql(INVITE, { email: "later@example.test", role: "developer" }, admin)).inviteUser;
    clockOffsetMs = INVITATION_TTL_MS + 1000;
    try {
      expect(errorCodes(await server.gql(ACCEPT, { token: expiring, username: "too-late", password: NEW_PASSWORD }))).toEqual(["BAD_USER_INPUT"]);
    } finally {
      clockOffsetMs = 0;
    }
    data(await server.gql(ACCEPT, { token, username: "in-time", password: NEW_PASSWORD }));
  });

  it("answers malformed, unknown and other kinds of tokens alike, before hashing any password", async () => {
    const reset = data(await server.gql(CREATE_RESET, { userId: world.users.noPartner.globalId }, admin)).createPasswordReset;
    for (const token of ["", "ppi_live_nope", reset.token, reset.token.replace("ppr_", "ppi_"), "ppk_live_" + "a".repeat(38)]) {
      const response = await server.gql(ACCEPT, { token, username: "ghost", password: NEW_PASSWORD });
      expect(errorCodes(response), token).toEqual(["BAD_USER_INPUT"]);
    }
    // The reset was not spent by being offered as an invitation.
    expect((await prisma().passwordReset.findFirstOrThrow({ where: { userId: world.users.noPartner.id } })).usedAt).toBeNull();
  });
});

describe("password resets", () => {
  it("an admin's one-time link sets a new password and ends every session of the user", async () => {
    const user = await createUser(server, "forgetful", "developer", world.partnerB.id);
    const socket = server.ws({ lazy: false, onNonLazyError: () => {}, connectionParams: { authorization: `Bearer ${user.token}` } });
    await new Promise<void>((resolve) => socket.on("connected", () => resolve()));
    const closed = new Promise<number>((resolve) => socket.on("closed", (event) => resolve((event as CloseEvent).code)));

    const link = data(await server.gql(CREATE_RESET, { userId: user.globalId }, admin)).createPasswordReset;
    expect(link.token).toMatch(/^ppr_live_[0-9A-Za-z]{38}$/);
    expect(link.url).toBeNull(); // no PASSWORD_RESET_URL_TEMPLATE here
    expect(link.user).toEqual({ id: user.globalId });
    expect(new Date(link.expiresAt).getTime()).toBeLessThanOrEqual(Date.now() + PASSWORD_RESET_TTL_MS + 1000);
    // Until used, nothing changes.
    data(await server.gql(`{ viewer { id } }`, {}, user.token));
    const second = data(await server.gql(CREATE_RESET, { userId: user.globalId }, admin)).createPasswordReset;

    expect(data(await server.gql(RESET, { token: link.token, password: NEW_PASSWORD })).resetPassword).toBe(true);
    expect(await closed).toBe(SESSION_ENDED_CLOSE_CODE);
    expect(errorCodes(await server.gql(`{ viewer { id } }`, {}, user.token))).toEqual(["UNAUTHENTICATED"]);
    expect(errorCodes(await server.gql(LOGIN, { login: "forgetful", password: TEST_PASSWORD }))).toEqual(["UNAUTHENTICATED"]);
    data(await server.gql(LOGIN, { login: "forgetful", password: NEW_PASSWORD }));

    // Used once; and the other link out for the user stopped working with it.
    expect(errorCodes(await server.gql(RESET, { token: link.token, password: "yet another passphrase" }))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.gql(RESET, { token: second.token, password: "yet another passphrase" }))).toEqual(["BAD_USER_INPUT"]);
    expect(await auditActions(world.partnerB.id)).toEqual(expect.arrayContaining(["passwordResetCreated", "passwordResetUsed"]));
  });

  it("refuses a short password without spending the link, and an expired link", async () => {
    const user = await createUser(server, "patient", "developer", null);
    const { token } = data(await server.gql(CREATE_RESET, { userId: user.globalId }, admin)).createPasswordReset;
    expect(errorCodes(await server.gql(RESET, { token, password: "short" }))).toEqual(["BAD_USER_INPUT"]);
    clockOffsetMs = PASSWORD_RESET_TTL_MS + 1000;
    try {
      expect(errorCodes(await server.gql(RESET, { token, password: NEW_PASSWORD }))).toEqual(["BAD_USER_INPUT"]);
    } finally {
      clockOffsetMs = 0;
    }
    expect(errorCodes(await server.gql(CREATE_RESET, { userId: world.globalId("User", "00000000-0000-7000-8000-000000000000") }, admin))).toEqual(["NOT_FOUND"]);
  });
});

describe("the demo seed", () => {
  it("onboards every demo partner with its partnerAdmin as primary contact", async () => {
    const seeded = await startTestServer();
    try {
      const demo = await seedDemoData(seeded.app.services, { password: "demo password long enough" });
      const partners = await seeded.app.services.prisma.partnerOrganization.findMany({ include: { primaryContact: true } });
      expect(partners.length).toBeGreaterThan(0);
      for (const partner of partners) {
        expect(partner.primaryContact).toMatchObject({ role: "partnerAdmin", partnerId: partner.id });
        expect(demo.accounts).toContainEqual(
          expect.objectContaining({ username: partner.primaryContact!.username, role: "partnerAdmin", partner: partner.name }),
        );
      }
      expect(await seeded.app.services.prisma.auditEvent.count({ where: { action: "partnerCreated" } })).toBe(partners.length);
    } finally {
      await seeded.close();
    }
  });
});
