import type { Caller } from "../auth/callers.js";
import { adminOfPartnerId, isStaff, memberPartnerId } from "../domain/roles.js";

// Who may read what, written once. Every scope of the schema says which callers it admits, as a
// "reach": everyone of a kind ("all"), no one ("none"), or the callers whose partner or user id is
// in a list. A record's read policy names the scopes that admit a reader and, for a scope with a
// parameter, the column of the record the parameter comes from. From that one statement come the
// three uses: the scope map scope-auth checks on the type, the boolean for code holding a row,
// and the Prisma `where` that filters lists and node lookups in the database.

/** Scopes that admit a caller whatever the record. */
export type WholeScope = "signedIn" | "admin" | "staff" | "gateway";
/** Scopes that admit a caller for some values of a parameter (a partner's or a user's id). */
export type ParamScope = "partnerMember" | "partnerAdmin" | "self";

/** What a scope needs to know of the caller; the GraphQL context has all of it. */
export interface AccessSubject extends Caller {
  /** Users who proved their password in this request (signUp/login payloads). */
  authenticatedNow: ReadonlySet<string>;
}

export type Reach = "all" | "none" | readonly string[];

const WHOLE: Record<WholeScope, (subject: AccessSubject) => boolean> = {
  signedIn: (s) => !!s.viewer,
  admin: (s) => s.viewer?.role === "admin",
  staff: (s) => isStaff(s.viewer),
  // The company's API gateway: a service credential, or an admin acting for it.
  gateway: (s) => !!s.service || s.viewer?.role === "admin",
};

const PARAM: Record<ParamScope, (subject: AccessSubject) => readonly string[]> = {
  partnerMember: (s) => nonNull(memberPartnerId(s.viewer)),
  partnerAdmin: (s) => nonNull(adminOfPartnerId(s.viewer)),
  self: (s) => [...(s.viewer ? [s.viewer.id] : []), ...s.authenticatedNow],
};

const nonNull = (value: string | null): readonly string[] => (value ? [value] : []);

/** Which callers a scope admits. */
export function reach(scope: WholeScope | ParamScope, subject: AccessSubject): Reach {
  if (scope in WHOLE) return WHOLE[scope as WholeScope](subject) ? "all" : "none";
  return PARAM[scope as ParamScope](subject);
}

/** Whether a scope admits the subject for this parameter value (for a whole scope, any). */
export function admits(scope: WholeScope | ParamScope, subject: AccessSubject, value?: string | null): boolean {
  const reached = reach(scope, subject);
  if (reached === "all") return true;
  if (reached === "none") return false;
  return value != null && reached.includes(value);
}

/** A record's read grants: whole scopes that admit, and parameter scopes with their column. */
export type Grants<Row> = Partial<Record<WholeScope, true>> & Partial<Record<ParamScope, StringColumn<Row>>>;
type StringColumn<Row> = { [K in keyof Row]: Row[K] extends string | null ? K : never }[keyof Row] & string;

export interface ReadPolicy<Row, Where> {
  readonly grants: Grants<Row>;
  /** The scope map for scope-auth's `authScopes` on the record's type. */
  scopes(row: Row): Partial<Record<WholeScope, true> & Record<ParamScope, string>>;
  /** Whether the subject may read a row already loaded. */
  allows(subject: AccessSubject, row: Row): boolean;
  /** The rows the subject may read, as a Prisma `where`. */
  where(subject: AccessSubject): Where;
  /** The values of one column among the rows the subject may read: all of them, or a list. */
  valuesOf(subject: AccessSubject, column: StringColumn<Row>): "all" | string[];
}

/** Matches no row: the `where` of a reader no grant admits. */
export const NOTHING = { id: { in: [] as string[] } };

export function readPolicy<Row, Where>(grants: Grants<Row>): ReadPolicy<Row, Where> {
  const entries = Object.entries(grants) as Array<[WholeScope | ParamScope, true | StringColumn<Row>]>;
  return {
    grants,
    scopes(row) {
      const map: Record<string, true | string> = {};
      for (const [scope, column] of entries) {
        if (column === true) map[scope] = true;
        else {
          // A record without the parameter (a user with no partner) cannot be reached through it.
          const value = row[column] as string | null;
          if (value != null) map[scope] = value;
        }
      }
      return map;
    },
    allows(subject, row) {
      return entries.some(([scope, column]) => admits(scope, subject, column === true ? undefined : (row[column] as string | null)));
    },
    where(subject) {
      const any: Array<Record<string, { in: string[] }>> = [];
      for (const [scope, column] of entries) {
        const reached = reach(scope, subject);
        if (reached === "all") return {} as Where;
        if (reached !== "none" && column !== true && reached.length > 0) any.push({ [column]: { in: [...reached] } });
      }
      if (any.length === 0) return NOTHING as Where;
      return (any.length === 1 ? any[0] : { OR: any }) as Where;
    },
    valuesOf(subject, wanted) {
      const values = new Set<string>();
      for (const [scope, column] of entries) {
        const reached = reach(scope, subject);
        if (reached === "all") return "all";
        if (reached !== "none" && column === wanted) for (const value of reached) values.add(value);
      }
      return [...values];
    },
  };
}
