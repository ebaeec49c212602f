import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PrismaPg } from "@prisma/adapter-pg";
import { createSchema, createYoga } from "graphql-yoga";
import { PrismaClient } from "../../../src/generated/prisma/client.js";

/**
 * The headline flow with no ORM query building and no authorization: graphql-yoga answering the
 * partner's 20 keys with their partner and creator from one hand-written `$queryRaw` statement.
 * It shows what Prisma's query engine and the server's own layers cost on top.
 */
const partnerId = process.env.PARTNER_ID!;
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL!, max: 10 }) });

interface Row {
  keyName: string;
  tokenPrefix: string;
  scopes: string[];
  partnerName: string;
  username: string;
}

const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type Query { apiKeys(first: Int = 20): APIKeyConnection! }
      type APIKeyConnection { edges: [APIKeyEdge!]! }
      type APIKeyEdge { node: APIKey! }
      type APIKey { keyName: String! tokenPrefix: String! scopes: [String!]! partner: Partner! createdBy: User }
      type Partner { name: String! }
      type User { username: String! }
    `,
    resolvers: {
      Query: {
        apiKeys: async (_root: unknown, args: { first: number }) => {
          const rows = await prisma.$queryRaw<Row[]>`
            SELECT k."keyName", k."tokenPrefix", k.scopes, p.name AS "partnerName", u.username
            FROM "ApiKey" k
            JOIN "PartnerOrganization" p ON p.id = k."partnerId"
            JOIN "User" u ON u.id = k."createdById"
            WHERE k."partnerId" = ${partnerId} AND k."revokedAt" IS NULL
            ORDER BY k."createdAt" DESC, k.id DESC
            LIMIT ${Math.min(args.first, 100)}`;
          return {
            edges: rows.map((row) => ({
              node: { ...row, partner: { name: row.partnerName }, createdBy: { username: row.username } },
            })),
          };
        },
      },
    },
  }),
  logging: false,
  landingPage: false,
  graphiql: false,
});
const server = createServer(yoga);
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`);
});
process.on("SIGTERM", () => server.close(() => void prisma.$disconnect().then(() => process.exit(0))));
