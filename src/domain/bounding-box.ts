/** An object's box as stored: top-left corner, width and height, in pixels or in fractions of its image. */
export interface StoredBox {
  bbox_x: number | null;
  bbox_y: number | null;
  bbox_w: number | null;
  bbox_h: number | null;
  bbox_units: string | null;
}

/** Six decimals: enough for any pixel box, and `0.1 * 640` comes out as 64. */
const round6 = (value: number) => Math.round(value * 1e6) / 1e6;

/**
 * An object's box in pixels of its parent image. A box still `relative` (fractions, as YOLO gives
 * them, before processing converts it) is scaled by the parent's size; when that size is unknown
 * the fractions are kept and marked `relative`.
 */
export function objectBox(object: StoredBox, parent: { width: number | null; height: number | null }): { bbox: [number, number, number, number]; units: 'px' | 'relative' } {
  const box: [number, number, number, number] = [object.bbox_x ?? 0, object.bbox_y ?? 0, object.bbox_w ?? 0, object.bbox_h ?? 0];
  if (object.bbox_units !== 'relative') return { bbox: box, units: 'px' };
  if (parent.width === null || parent.height === null) return { bbox: box, units: 'relative' };
  const [x, y, w, h] = box;
  return { bbox: [round6(x * parent.width), round6(y * parent.height), round6(w * parent.width), round6(h * parent.height)], units: 'px' };
}
