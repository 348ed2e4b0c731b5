import { useEffect, useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { gridLayout, nearEnd, visibleRows, type RowRange } from '../grid-math';

export interface VirtualGridProps<T> {
  items: readonly T[];
  /** Columns are at least this wide; as many as fit. */
  minColumnWidth: number;
  /** Every row has this height (px): what makes windowing exact and cheap. */
  rowHeight: number;
  gap?: number;
  overscanRows?: number;
  getKey: (item: T, index: number) => string;
  renderItem: (item: T, index: number) => ReactNode;
  /** Called when the last rows come into view (fetch the next page). */
  onNearEnd?: () => void;
  /** Shown after the rows (a loading line, an error, "the end"). */
  footer?: ReactNode;
  initialScrollTop?: number;
  onScrollTopChange?: (scrollTop: number) => void;
  label?: string;
}

/**
 * A windowed grid: the element scrolls, a spacer gives the full height, and only the rows in view
 * (plus a few) are in the DOM, each placed with a transform. A 100 000-item list costs the same
 * DOM as a 50-item one.
 */
export function VirtualGrid<T>(props: VirtualGridProps<T>) {
  const { items, minColumnWidth, rowHeight, gap = 12, overscanRows = 2, getKey, renderItem, onNearEnd, footer, label } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [range, setRange] = useState<RowRange>({ first: 0, last: -1 });
  const frame = useRef(0);

  const layout = gridLayout(items.length, size.width, minColumnWidth, gap, rowHeight);

  const measure = () => {
    const el = scroller.current;
    if (!el) return;
    const next = visibleRows(el.scrollTop, el.clientHeight, rowHeight, layout.rows, overscanRows);
    setRange((prev) => (prev.first === next.first && prev.last === next.last ? prev : next));
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setSize({ width: el.clientWidth, height: el.clientHeight }));
    observer.observe(el);
    setSize({ width: el.clientWidth, height: el.clientHeight });
    if (props.initialScrollTop) el.scrollTop = props.initialScrollTop;
    return () => observer.disconnect();
  }, []);

  // Re-window when the layout changes (resize, more items).
  useLayoutEffect(measure, [layout.rows, layout.columns, size.height, rowHeight]);

  useEffect(() => {
    if (onNearEnd && size.width > 0 && nearEnd(range, layout.rows, 3)) onNearEnd();
  }, [range, layout.rows, size.width, onNearEnd]);

  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const onScroll = () => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      measure();
      props.onScrollTopChange?.(scroller.current?.scrollTop ?? 0);
    });
  };

  const rows: ReactNode[] = [];
  for (let row = range.first; row <= range.last && row < layout.rows; row++) {
    const start = row * layout.columns;
    const cells = items.slice(start, start + layout.columns);
    rows.push(
      <div
        key={row}
        className="vgrid-row"
        role="row"
        style={{ transform: `translateY(${row * rowHeight}px)`, height: rowHeight - gap, gridTemplateColumns: `repeat(${layout.columns}, minmax(0, 1fr))`, gap }}
      >
        {cells.map((item, i) => (
          <div key={getKey(item, start + i)} className="vgrid-cell" role="gridcell">
            {renderItem(item, start + i)}
          </div>
        ))}
      </div>,
    );
  }

  return (
    <div ref={scroller} className="vgrid" onScroll={onScroll} role="grid" aria-label={label} aria-rowcount={layout.rows} data-testid="vgrid">
      <div className="vgrid-spacer" style={{ height: layout.height }}>
        {rows}
      </div>
      {footer && <div className="vgrid-footer">{footer}</div>}
    </div>
  );
}
