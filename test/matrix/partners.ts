import type { MatrixRow } from "../support/matrix.js";
import { deniedSilently, partnerAMembers, showsId, staff } from "../support/matrix.js";

const bMembers = ["partnerAdminB", "developerB"] as const;
const UPDATE = `mutation ($id: ID!, $input: UpdatePartnerInput!) { updatePartner(id: $id, input: $input) { id } }`;

const rows: MatrixRow[] = [
  {
    field: "Query.partners",
    case: "partner A is listed",
    allow: [...staff, ...partnerAMembers],
    operation: () => ({ query: `{ partners(first: 50) { edges { node { id name } } } }` }),
    allowed: (response, world) => showsId(response, world.partnerA.globalId),
    denied: deniedSilently,
  },
  {
    field: "Query.partners",
    case: "partner B is listed",
    allow: [...staff, ...bMembers],
    operation: () => ({ query: `{ partners(first: 50) { edges { node { id } } } }` }),
    allowed: (response, world) => showsId(response, world.partnerB.globalId),
    denied: deniedSilently,
  },
  {
    field: "Query.partners",
    case: "partner B by a filter that matches only B (search, status)",
    allow: [...staff, ...bMembers],
    operation: () => ({ query: `{ partners(search: "partner b", status: active) { totalCount edges { node { id } } } }` }),
    allowed: (response, world) =>
      showsId(response, world.partnerB.globalId) &&
      (response.data as { partners: { totalCount: number } }).partners.totalCount === 1,
    denied: (response) => {
      deniedSilently(response);
      const partners = (response.data as { partners: { totalCount: number } }).partners;
      if (partners.totalCount !== 0) throw new Error(`totalCount counts a hidden partner: ${partners.totalCount}`);
    },
  },
  {
    field: "Query.partner",
    case: "partner A by id",
    allow: [...staff, ...partnerAMembers],
    operation: (world) => ({ query: `query ($id: ID!) { partner(id: $id) { id name } }`, variables: { id: world.partnerA.globalId } }),
    denied: deniedSilently,
  },
  {
    field: "Query.partner",
    case: "partner B by id",
    allow: [...staff, ...bMembers],
    operation: (world) => ({ query: `query ($id: ID!) { partner(id: $id) { id name } }`, variables: { id: world.partnerB.globalId } }),
    denied: deniedSilently,
  },
  {
    field: "PartnerOrganization.primaryContact",
    case: "partner A's primary contact",
    allow: [...staff, ...partnerAMembers],
    operation: (world) => ({
      query: `query ($id: ID!) { node(id: $id) { ... on PartnerOrganization { primaryContact { id } } } }`,
      variables: { id: world.partnerA.globalId },
    }),
    allowed: (response, world) => showsId(response, world.users.partnerAdminA.globalId),
    denied: deniedSilently,
  },
  {
    field: "Mutation.updatePartner",
    case: "partner A's name (its primary contact is partnerAdminA)",
    allow: ["admin", "partnerAdminA"],
    operation: (world) => ({ query: UPDATE, variables: { id: world.partnerA.globalId, input: { name: "Partner A" } } }),
  },
  {
    field: "Mutation.updatePartner",
    case: "partner A's primaryContact",
    allow: ["admin", "partnerAdminA"],
    operation: (world) => ({
      query: UPDATE,
      variables: { id: world.partnerA.globalId, input: { primaryContactId: world.users.partnerAdminA.globalId } },
    }),
  },
  {
    field: "Mutation.updatePartner",
    case: "partner A's status (admin only, even for its primary contact)",
    allow: ["admin"],
    operation: (world) => ({ query: UPDATE, variables: { id: world.partnerA.globalId, input: { status: "active" } } }),
  },
  {
    field: "Mutation.updatePartner",
    case: "partner A's supportTier with its name (one forbidden field refuses the whole change)",
    allow: ["admin"],
    operation: (world) => ({
      query: UPDATE,
      variables: { id: world.partnerA.globalId, input: { name: "Partner A", supportTier: "standard" } },
    }),
  },
  {
    field: "Mutation.updatePartner",
    case: "partner B's name",
    allow: ["admin", "partnerAdminB"],
    operation: (world) => ({ query: UPDATE, variables: { id: world.partnerB.globalId, input: { name: "Partner B" } } }),
  },
];

export default rows;
