/** Decoded pixels: 8-bit sRGB, 3 channels, row-major, no padding. Every feature is derived from one. */
export interface Raster {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}
