import type { Viewer } from "../auth/callers.js";
import { badInput } from "../errors.js";
import type { Role } from "../generated/prisma/enums.js";

// The product's roles: `admin` and `support` are the company's staff and belong to no partner;
// `partnerAdmin` and `developer` belong to one partner organisation ("their own").

export const STAFF_ROLES: ReadonlySet<Role> = new Set(["admin", "support"]);
export const PARTNER_ROLES: ReadonlySet<Role> = new Set(["partnerAdmin", "developer"]);

export const isStaff = (viewer: Pick<Viewer, "role"> | null) => !!viewer && STAFF_ROLES.has(viewer.role);

/** The viewer's partner when they are one of its partnerAdmins or developers, else null. */
export const memberPartnerId = (viewer: Pick<Viewer, "role" | "partnerId"> | null) =>
  viewer && PARTNER_ROLES.has(viewer.role) ? viewer.partnerId : null;

/** The viewer's partner when they are its partnerAdmin, else null. */
export const adminOfPartnerId = (viewer: Pick<Viewer, "role" | "partnerId"> | null) =>
  viewer?.role === "partnerAdmin" ? viewer.partnerId : null;

/**
 * The invariants between a user's role and partner, kept by every change of either:
 * staff belong to no partner; a partnerAdmin always belongs to one; a developer may have none
 * (a signed-up account not yet placed in a partner). The error names the field being changed.
 */
export function roleAndPartnerProblem(role: Role, partnerId: string | null, field: "role" | "partnerId") {
  if (STAFF_ROLES.has(role) && partnerId) {
    return badInput(`${field}: admin and support users cannot belong to a partner`, {
      issues: [{ path: [field], message: "Staff cannot belong to a partner" }],
    });
  }
  if (role === "partnerAdmin" && !partnerId) {
    return badInput(`${field}: a partnerAdmin must belong to a partner`, {
      issues: [{ path: [field], message: "A partnerAdmin needs a partner" }],
    });
  }
  return null;
}
