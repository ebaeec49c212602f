import type { GraphiQLOptions } from "graphql-yoga";

const DEFAULT_QUERY = `# Sign in, then put the token in the Headers tab:
#   { "Authorization": "Bearer <token>" }
mutation Login {
  login(input: { login: "admin", password: "the demo password printed at start" }) {
    token
    user { username role }
  }
}

query Me {
  viewer { username email role partner { name } }
}
`;

/**
 * GraphiQL on the GraphQL endpoint, its assets served from the package so it works without a CDN.
 * The package (a 9 MB page) loads with the first page asked for, not with every start-up.
 */
export const graphiql = {
  graphiql: { subscriptionsProtocol: "WS" as const, title: "Partner Portal", defaultQuery: DEFAULT_QUERY },
  renderGraphiQL: (options: GraphiQLOptions) =>
    import("@graphql-yoga/render-graphiql").then(({ renderGraphiQL }) => renderGraphiQL(options)),
};
