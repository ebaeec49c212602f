import { lexicographicSortSchema, specifiedDirectives } from "graphql";
import { GraphQLLiveDirective } from "@envelop/live-query";
import { builder } from "./builder.js";
import "./partner.js";
import "./user.js";
import "./api-key.js";
import "./audit-event.js";
import "./service-credential.js";
import "./developer-doc.js";
import "./doc-history.js";
import "./usage-log.js";
import "./onboarding.js";

/** The whole API. Each module registers its types and fields when imported above. */
export function buildSchema() {
  return lexicographicSortSchema(builder.toSchema({ directives: [...specifiedDirectives, GraphQLLiveDirective] }));
}
