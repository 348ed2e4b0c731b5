import { describe, expect, it } from 'vitest';
import { gridLayout, nearEnd, visibleRows } from '../../web/src/grid-math.js';

/** The virtualised grid's windowing: what it renders does not grow with the number of items. */
describe('grid windowing', () => {
  it('fits as many columns of the minimum width as the width allows, at least one', () => {
    expect(gridLayout(100, 900, 190, 12, 250)).toEqual({ columns: 4, rows: 25, height: 6250 });
    expect(gridLayout(100, 1200, 190, 12, 250).columns).toBe(6);
    expect(gridLayout(3, 100, 190, 12, 250)).toEqual({ columns: 1, rows: 3, height: 750 });
    expect(gridLayout(0, 900, 190, 12, 250)).toEqual({ columns: 4, rows: 0, height: 0 });
  });

  it('renders only the rows in view plus the overscan, at any scroll position', () => {
    expect(visibleRows(0, 800, 250, 1000, 2)).toEqual({ first: 0, last: 5 });
    expect(visibleRows(2500, 800, 250, 1000, 2)).toEqual({ first: 8, last: 15 });
    // 100 000 media in 4 columns: the same handful of rows near the end.
    const rows = gridLayout(100_000, 900, 190, 12, 250).rows;
    const end = visibleRows(rows * 250 - 800, 800, 250, rows, 2);
    expect(end).toEqual({ first: rows - 6, last: rows - 1 });
    expect(end.last - end.first + 1).toBeLessThanOrEqual(Math.ceil(800 / 250) + 1 + 4);
  });

  it('copes with no rows, overscrolling and a zero-height viewport', () => {
    expect(visibleRows(0, 800, 250, 0, 2)).toEqual({ first: 0, last: -1 });
    expect(visibleRows(10_000, 800, 250, 3, 2)).toEqual({ first: 2, last: 2 });
    expect(visibleRows(-50, 0, 250, 10, 0)).toEqual({ first: 0, last: 0 });
  });

  it('asks for the next page when the last rows come into view', () => {
    expect(nearEnd({ first: 0, last: 5 }, 100, 3)).toBe(false);
    expect(nearEnd({ first: 90, last: 96 }, 100, 3)).toBe(true);
    expect(nearEnd({ first: 0, last: -1 }, 0, 3)).toBe(true);
  });
});
