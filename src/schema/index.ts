import { lexicographicSortSchema } from "graphql";
import { builder } from "./builder.js";
import "./partner.js";
import "./user.js";

/** The whole API. Each module registers its types and fields when imported above. */
export function buildSchema() {
  return lexicographicSortSchema(builder.toSchema());
}
