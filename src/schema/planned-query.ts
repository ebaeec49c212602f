/**
 * Whether a query Pothos planned for one row reads nothing but these columns of it (no relation,
 * no count), so a row already in memory can answer instead of a database statement.
 */
export function selectsOnly(query: { select?: object; include?: object }, columns: ReadonlySet<string>): boolean {
  if (query.include || !query.select) return false;
  return Object.entries(query.select).every(([column, value]) => value === true && columns.has(column));
}
