import { expect } from "vitest";
import { errorCodes } from "../support/server.js";
import { partnerAMembers, staff, type Actor, type MatrixRow, type World } from "../support/matrix.js";
import { createKey, event, RECORD_USAGE, type TestKey } from "../support/usage.js";

const readers: readonly Actor[] = [...staff, ...partnerAMembers];

// Each world gets one key per partner and a usage log for each, made once.
const seeded = new WeakMap<World, Promise<{ keyA: TestKey; keyB: TestKey }>>();
function seed(world: World) {
  let done = seeded.get(world);
  if (!done) {
    done = (async () => {
      const keyA = await createKey(world.server, world.partnerA.id, world.users.partnerAdminA.id, { keyName: "usage-matrix-a" });
      const keyB = await createKey(world.server, world.partnerB.id, world.users.partnerAdminB.id, { keyName: "usage-matrix-b" });
      const response = await world.server.gql(RECORD_USAGE, { events: [event(keyA), event(keyB)] }, world.token("admin"));
      if (response.data?.recordUsage.accepted !== 2) throw new Error(JSON.stringify(response));
      return { keyA, keyB };
    })();
    seeded.set(world, done);
  }
  return done;
}

/** Signed out is told to sign in; a signed-in reader of nothing gets an empty answer, no error. */
const readDenied = (response: Parameters<NonNullable<MatrixRow["denied"]>>[0], _world: World, actor: Actor) => {
  if (actor === "signedOut") expect(errorCodes(response)).toEqual(["UNAUTHENTICATED"]);
  else expect(response.errors).toBeUndefined();
};

const rows: MatrixRow[] = [
  {
    field: "Query.usageLogs",
    case: "partner A's usage logs",
    allow: readers,
    operation: async (world) => {
      await seed(world);
      return {
        query: `query ($p: ID) { usageLogs(filter: { partnerId: $p }) { edges { node { id partner { id } apiKey { id } } } } }`,
        variables: { p: world.partnerA.globalId },
      };
    },
    denied: readDenied,
  },
  {
    field: "Query.usageSummary",
    case: "partner A's totals",
    allow: readers,
    operation: async (world) => {
      await seed(world);
      return {
        query: `query ($p: ID) { usageSummary(partnerId: $p) { totalRequests byStatusCode { statusCode requestCount } } }`,
        variables: { p: world.partnerA.globalId },
      };
    },
    allowed: (response) =>
      !response.errors?.length &&
      ((response.data as { usageSummary?: { totalRequests: number } } | null)?.usageSummary?.totalRequests ?? 0) > 0,
    denied: readDenied,
  },
  {
    field: "Mutation.recordUsage",
    case: "report usage for partner A's key (the gateway: admin or a service credential)",
    allow: ["admin"],
    operation: async (world) => {
      const { keyA } = await seed(world);
      return { query: RECORD_USAGE, variables: { events: [event(keyA)] } };
    },
    allowed: (response) =>
      !response.errors?.length && (response.data as { recordUsage?: { accepted: number } } | null)?.recordUsage?.accepted === 1,
  },
  {
    field: "Subscription.usageLogCreated",
    case: "partner A's new usage logs (over SSE)",
    allow: readers,
    operation: async (world) => {
      const { keyA } = await seed(world);
      return {
        query: `subscription ($p: ID) { usageLogCreated(partnerId: $p) { id partner { id } } }`,
        variables: { p: world.partnerA.globalId },
        trigger: () => world.server.gql(RECORD_USAGE, { events: [event(keyA)] }, world.token("admin")),
      };
    },
    allowed: (response, world) =>
      !response.errors?.length &&
      (response.data as { usageLogCreated?: { partner: { id: string } } } | null)?.usageLogCreated?.partner.id ===
        world.partnerA.globalId,
    denied: (response, _world, actor) =>
      expect(errorCodes(response)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]),
  },
];

export default rows;
