import type { Actor, MatrixRow, World } from "../support/matrix.js";
import { ACTORS, deniedSilently, partnerAMembers, showsId, staff } from "../support/matrix.js";
import { docFixtures, type DocFixtures } from "./developer-docs.js";

const NODE = `query ($id: ID!) { node(id: $id) { id } }`;
const NODES = `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`;
const bMembers: readonly Actor[] = ["partnerAdminB", "developerB"];

// `allowed` is synchronous; the doc ids are looked up in `operation` and kept here.
const docIds = new WeakMap<World, DocFixtures>();

const nodeRow = (
  field: "Query.node" | "Query.nodes",
  what: string,
  allow: readonly Actor[],
  target: (world: World, docs: DocFixtures) => string,
): MatrixRow => ({
  field,
  case: what,
  allow,
  operation: async (world) => {
    const docs = await docFixtures(world);
    docIds.set(world, docs);
    const id = target(world, docs);
    // nodes: the target among ids of records nobody but staff may read, and one that does not exist.
    return field === "Query.node"
      ? { query: NODE, variables: { id } }
      : { query: NODES, variables: { ids: [world.globalId("PartnerOrganization", "00000000-0000-7000-8000-000000000000"), id, docs.draft] } };
  },
  allowed: (response, world) => {
    const docs = docIds.get(world);
    return !!docs && showsId(response, target(world, docs));
  },
  denied: deniedSilently,
});

const cases: Array<[string, readonly Actor[], (world: World, docs: DocFixtures) => string]> = [
  ["partner A", [...staff, ...partnerAMembers], (world) => world.partnerA.globalId],
  ["partner B", [...staff, ...bMembers], (world) => world.partnerB.globalId],
  ["developer of partner A", [...staff, ...partnerAMembers], (world) => world.users.developerA.globalId],
  ["an admin", staff, (world) => world.users.admin.globalId],
  ["a user with no partner (only themself and staff)", [...staff, "noPartner"], (world) => world.users.noPartner.globalId],
  ["a public doc", ACTORS, (_world, docs) => docs.publicDoc],
  ["partner A's published doc", [...staff, ...partnerAMembers], (_world, docs) => docs.partnerADoc],
  ["a draft", staff, (_world, docs) => docs.draft],
];

const rows: MatrixRow[] = [
  ...cases.map(([what, allow, target]) => nodeRow("Query.node", what, allow, target)),
  ...cases.map(([what, allow, target]) => nodeRow("Query.nodes", what, allow, target)),
];

export default rows;
