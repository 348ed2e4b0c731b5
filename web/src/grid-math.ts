/** The windowing arithmetic of the virtualised grid: pure, so it is tested without a browser. */

export interface GridLayout {
  columns: number;
  rows: number;
  /** Total height of all rows, in px. */
  height: number;
}

export interface RowRange {
  /** First and last row to render (inclusive); first > last when there is nothing to render. */
  first: number;
  last: number;
}

/** How many columns of at least `minColumnWidth` fit in `width`, and the rows `count` items need. */
export function gridLayout(count: number, width: number, minColumnWidth: number, gap: number, rowHeight: number): GridLayout {
  const columns = Math.max(1, Math.floor((Math.max(0, width) + gap) / (minColumnWidth + gap)));
  const rows = Math.ceil(count / columns);
  return { columns, rows, height: rows * rowHeight };
}

/** The rows visible between `scrollTop` and `scrollTop + viewport`, plus `overscan` rows each side. */
export function visibleRows(scrollTop: number, viewport: number, rowHeight: number, rows: number, overscan: number): RowRange {
  if (rows === 0 || rowHeight <= 0) return { first: 0, last: -1 };
  const top = Math.max(0, scrollTop);
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(rows - 1, Math.ceil((top + Math.max(0, viewport)) / rowHeight) - 1 + overscan);
  return { first: Math.min(first, rows - 1), last: Math.max(last, Math.min(first, rows - 1)) };
}

/** Whether the user has scrolled within `threshold` rows of the end (time to fetch the next page). */
export function nearEnd(range: RowRange, rows: number, threshold: number): boolean {
  return rows === 0 || range.last >= rows - 1 - threshold;
}
