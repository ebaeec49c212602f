/**
 * A Prisma filter for "contains this text, ignoring case", matching the text literally. Prisma
 * hands `contains` to LIKE/ILIKE as it is, where `%` and `_` are wildcards and `\` escapes, so a
 * search for `%` would match everything: those three are escaped. Every `contains` goes through here.
 */
export const containsText = (text: string) => ({
  contains: text.replace(/[\\%_]/g, "\\$&"),
  mode: "insensitive" as const,
});
