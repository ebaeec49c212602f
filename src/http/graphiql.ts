import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

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

/** GraphiQL on the GraphQL endpoint, its assets served from the package so it works without a CDN. */
export const graphiql = {
  graphiql: { subscriptionsProtocol: "WS" as const, title: "Partner Portal", defaultQuery: DEFAULT_QUERY },
  renderGraphiQL,
};
