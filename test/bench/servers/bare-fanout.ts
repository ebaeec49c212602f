import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ExecutionArgs } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createPubSub, createSchema, createYoga } from "graphql-yoga";
import { WebSocketServer } from "ws";

/**
 * The framework's floor for fan-out: graphql-yoga with graphql-ws as Yoga's own recipe wires
 * them, an in-memory pub/sub and `subscription { ev { t } }`. `POST /publish?t=<n>` publishes one
 * event and answers once `publish` has returned.
 */
const pubsub = createPubSub<{ ev: [{ t: number }] }>();
const yoga = createYoga({
  schema: createSchema({
    typeDefs: "type Query { ok: Boolean } type Ev { t: Float } type Subscription { ev: Ev }",
    resolvers: {
      Subscription: { ev: { subscribe: () => pubsub.subscribe("ev"), resolve: (payload: { t: number }) => payload } },
    },
  }),
  logging: false,
  landingPage: false,
  graphiql: false,
});

const server = createServer((req, res) => {
  if (req.method === "POST" && req.url?.startsWith("/publish")) {
    const t = Number(new URL(req.url, "http://x").searchParams.get("t"));
    pubsub.publish("ev", { t });
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    return;
  }
  void yoga(req, res);
});

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}
const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
useServer(
  {
    execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
    subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    onSubscribe: async (ctx, _id, params) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
      const args: ExecutionArgs = {
        schema,
        operationName: params.operationName,
        document: parse(params.query),
        variableValues: params.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe } satisfies EnvelopedRoot,
      };
      const errors = validate(args.schema, args.document);
      if (errors.length) return errors;
      return args;
    },
  },
  wss,
);

server.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
