import { queryFromInfo } from "@pothos/plugin-prisma";
import type { GraphQLResolveInfo } from "graphql";
import { badInput } from "../errors.js";
import type { Context } from "./context.js";

/** Relay paging arguments, as every connection takes them. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export const DEFAULT_PAGE_SIZE = 20;
/** A larger `first`/`last` is clamped to this, as on every other connection. */
export const MAX_PAGE_SIZE = 100;

type Direction = "asc" | "desc";

/**
 * One page of a list ordered newest first by (a timestamp column, id), with keyset cursors: the
 * row's (timestamp, id). A page after a cursor is the same whatever was inserted since, unlike an
 * offset, and the page is one statement: the position is a `where`, so Prisma loads the relations
 * the operation selected in the same query (its own `cursor` would cost extra statements).
 *
 * `findMany` receives the whole query: the list's `where` and the position, the order, the page
 * size, and the columns the operation selected under `edges.node` (plus id and the time column).
 */
export async function newestFirstPage<Column extends string, Row extends { id: string } & Record<Column, Date>, Where>(
  options: {
    /** Names the list in its cursors, so a cursor from another list is refused. */
    list: string;
    /** The GraphQL type of the list's nodes. */
    typeName: string;
    column: Column;
    where: Where;
    args: PageArgs;
    ctx: Context;
    info: GraphQLResolveInfo;
  },
  findMany: (query: { select: Record<string, unknown>; where: Where; orderBy: Array<Record<string, Direction>>; take: number }) => Promise<Row[]>,
) {
  const { list, column, args } = options;
  const backward = args.last != null || args.before != null;
  if (backward && (args.first != null || args.after != null)) {
    throw badInput("Page with first/after or with last/before, not both");
  }
  const requested = (backward ? args.last : args.first) ?? DEFAULT_PAGE_SIZE;
  if (requested < 0) throw badInput("first and last cannot be negative");
  const size = Math.min(requested, MAX_PAGE_SIZE);
  const cursor = backward ? args.before : args.after;
  const at = cursor ? decodeCursor(list, cursor) : null;
  const compare = <T,>(value: T) => (backward ? { gt: value } : { lt: value });
  const beyond = at ? { OR: [{ [column]: compare(at.time) }, { [column]: at.time, id: compare(at.id) }] } : null;
  const direction: Direction = backward ? "asc" : "desc";
  const planned = queryFromInfo({ context: options.ctx, info: options.info, typeName: options.typeName, path: ["edges", "node"] }) as {
    select?: Record<string, unknown>;
  };
  const rows = await findMany({
    select: { ...planned.select, id: true, [column]: true },
    where: (beyond ? { AND: [options.where, beyond] } : options.where) as Where,
    orderBy: [{ [column]: direction }, { id: direction }],
    take: size + 1,
  });
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (backward) page.reverse();
  const edges = page.map((node) => ({ cursor: encodeCursor(list, node[column], node.id), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: backward ? !!at : more,
      hasPreviousPage: backward ? more : !!at,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

export const encodeCursor = (list: string, time: Date, id: string) =>
  Buffer.from(`${list}:${time.getTime()}:${id}`).toString("base64url");

export function decodeCursor(list: string, cursor: string): { time: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString();
  const match = /^([A-Za-z]+):(-?\d{1,15}):([0-9a-f-]{1,64})$/.exec(text);
  if (!match || match[1] !== list) throw badInput("The cursor is not one this list gave");
  return { time: new Date(Number(match[2])), id: match[3]! };
}

/** Memoises a count, so `totalCount` and a flag derived from it run one statement. */
export function once<T>(compute: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= compute());
}
