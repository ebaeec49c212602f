const escapeLike = (text: string) => text.replace(/[\\%_]/g, "\\$&");

/**
 * A Prisma filter for "contains this text, ignoring case", matching the text literally. Prisma
 * hands `contains` to LIKE/ILIKE as it is, where `%` and `_` are wildcards and `\` escapes, so a
 * search for `%` would match everything: those three are escaped. Every `contains` goes through here.
 */
export const containsText = (text: string) => ({
  contains: escapeLike(text),
  mode: "insensitive" as const,
});

/** A Prisma filter for "starts with this text, ignoring case", matching the text literally (as above). */
export const startsWithText = (text: string) => ({
  startsWith: escapeLike(text),
  mode: "insensitive" as const,
});
