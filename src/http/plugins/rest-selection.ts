import {
  getNamedType,
  isObjectType,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLSchema,
} from "graphql";
import type { Plugin } from "graphql-yoga";

/** Whether a request is for the REST API (SOFA runs its operations with the request's context). */
export type IsRestRequest = (context: unknown) => boolean;

const trimmed = new WeakMap<DocumentNode, DocumentNode>();

/**
 * SOFA selects every field of a route's record, the record's own connections (a partner's keys,
 * members, usage…) included, so a page of 100 partners would read 100 × 4 nested pages and go
 * over the cost bound. A REST record leaves its connections out: each has its own route
 * (`/api/api-keys?partnerId=…`, `/api/usage-logs?filter=…`). Runs before the query limits, so
 * they judge the operation that will run. Fields named in `omit` are left out too.
 */
export function restSelection(options: {
  schema: GraphQLSchema;
  isRestRequest: IsRestRequest;
  /** Further fields to leave out, as `Type.field`. */
  omit: readonly string[];
}): Plugin {
  const { schema, isRestRequest } = options;
  const omit = new Set(options.omit);
  const isConnection = (type: unknown) => {
    const named = type ? getNamedType(type as never) : undefined;
    return isObjectType(named) && "edges" in named.getFields() && "pageInfo" in named.getFields();
  };

  const trim = (document: DocumentNode): DocumentNode => {
    const typeInfo = new TypeInfo(schema);
    let depth = 0;
    const withoutConnections = visit(
      document,
      visitWithTypeInfo(typeInfo, {
        Field: {
          enter: () => {
            depth++;
            const parent = typeInfo.getParentType();
            const field = typeInfo.getFieldDef();
            const omitted = !!parent && !!field && omit.has(`${parent.name}.${field.name}`);
            if (depth > 1 && (omitted || isConnection(typeInfo.getType()))) {
              depth--;
              return null;
            }
            return undefined;
          },
          leave: () => void depth--,
        },
      }),
    );
    const used = new Set<string>();
    visit(withoutConnections, {
      VariableDefinition: () => false,
      Variable: (node) => void used.add(node.name.value),
    });
    return visit(withoutConnections, {
      VariableDefinition: (node) => (used.has(node.variable.name.value) ? undefined : null),
    });
  };

  return {
    onExecute({ args }) {
      if (!isRestRequest(args.contextValue)) return;
      const operation = args.document.definitions[0];
      if (operation?.kind !== Kind.OPERATION_DEFINITION) return;
      let document = trimmed.get(args.document);
      if (!document) {
        document = trim(args.document);
        trimmed.set(args.document, document);
      }
      // The document SOFA made for the route; every request to the route shares it.
      args.document = document;
    },
  };
}
