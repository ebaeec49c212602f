import { builder } from "./builder.js";

export const PartnerStatus = builder.enumType("PartnerStatus", {
  values: {
    active: { description: "Members may use and manage the partner's keys." },
    suspended: { description: "Data is kept; members' writes are refused and keys do not verify." },
  } as const,
});

export const SupportTier = builder.enumType("SupportTier", {
  values: ["standard", "premium", "enterprise"] as const,
});

export const PartnerOrganization = builder.prismaNode("PartnerOrganization", {
  id: { field: "id" },
  description: "A partner organisation that uses the company's API. Readable by staff and its own members.",
  authScopes: (partner) => ({ staff: true, partnerMember: partner.id }),
  fields: (t) => ({
    name: t.exposeString("name"),
    status: t.expose("status", { type: PartnerStatus }),
    supportTier: t.expose("supportTier", { type: SupportTier }),
    primaryContact: t.relation("primaryContact", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});
