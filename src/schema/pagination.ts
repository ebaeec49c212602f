import { badInput } from "./errors.js";

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
type Comparison<T> = { lt: T } | { gt: T };

/**
 * One page of a list ordered newest first by (a timestamp column, id), with keyset cursors: the
 * row's (timestamp, id). A page after a cursor is the same whatever was inserted since, unlike an
 * offset, and the page is one statement: the position is a `where`, so Prisma can load the
 * selected relations in the same query (its own `cursor` would cost extra statements).
 *
 * `load` receives what to add to the list's query and answers the rows (with `id` and the time
 * column selected, whatever the client asked for).
 */
export async function newestFirstPage<Column extends string, Row extends { id: string } & Record<Column, Date>>(
  options: {
    /** Names the list in its cursors, so a cursor from another list is refused. */
    list: string;
    column: Column;
    args: PageArgs;
  },
  load: (window: {
    where: { OR: Array<Record<Column, Comparison<Date>> | (Record<Column, Date> & { id: Comparison<string> })> } | null;
    orderBy: Array<Record<Column, Direction> | { id: Direction }>;
    take: number;
  }) => Promise<Row[]>,
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
  const compare = <T,>(value: T): Comparison<T> => (backward ? { gt: value } : { lt: value });
  const where = at
    ? {
        OR: [
          { [column]: compare(at.time) } as Record<Column, Comparison<Date>>,
          { [column]: at.time, id: compare(at.id) } as Record<Column, Date> & { id: Comparison<string> },
        ],
      }
    : null;
  const direction: Direction = backward ? "asc" : "desc";
  const rows = await load({
    where,
    orderBy: [{ [column]: direction } as Record<Column, Direction>, { id: direction }],
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

const encodeCursor = (list: string, time: Date, id: string) =>
  Buffer.from(`${list}:${time.getTime()}:${id}`).toString("base64url");

function decodeCursor(list: string, cursor: string): { time: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString();
  const match = /^([A-Za-z]+):(-?\d{1,15}):([0-9a-f-]{1,64})$/.exec(text);
  if (!match || match[1] !== list) throw badInput("The cursor is not one this list gave");
  return { time: new Date(Number(match[2])), id: match[3]! };
}
