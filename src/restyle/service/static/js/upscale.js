// The live camera's upscale: the network runs on a frame `factor` times smaller than the one
// shown, and its output is brought back up guided by the camera's own luminance at the shown
// size, so edges land where the camera sees them instead of being smeared by the upscale.
//
//   shown = bilinear(p) + bilinear(a) · (Y_fine − bilinear(Y_coarse))
//
// p: the network's output (per channel), Y: the camera's luminance,
// `Y_fine − bilinear(Y_coarse)`: the detail the smaller frame lost, and a: per channel and
// pixel, the slope of p against Y_coarse over a (2·RADIUS+1)² window (the local linear model of
// He et al.'s guided filter, clamped to ±GAIN_LIMIT). Where the network followed the photo's
// edges the lost detail comes back with the network's own contrast and colour (and sign: a style
// that darkens what is light gets the detail inverted); where it painted a texture of its own
// (a ≈ 0) the texture is kept as it was drawn.
//
// Where this departs from the guided filter: the guided filter's output is a·Y + b, both
// smoothed, which replaces the network's texture by a smooth copy of the photo (the brush strokes
// are gone); adding the photo's detail with a gain of 1 instead puts the photo's own fine texture
// (feathers, bricks) back over the painting. Both were compared on the bundled photos against a
// plain bilinear upscale (blurred edges) before choosing this (docs/web.md).

export const RADIUS = 2;
// In luminance units squared (luminance in [0, 1]): a window whose luminance varies less than
// about 0.01 gets a gain near 0, so camera noise in flat areas is not amplified.
export const EPS = 1e-4;
export const GAIN_LIMIT = 2;

const LUMA = [0.299, 0.587, 0.114]; // Rec. 601, as the camera's video is coded

// The box mean of `src` (width × height) over a (2r+1)² window, edges repeated, into `dst`:
// a horizontal then a vertical running sum, O(width·height) whatever r.
function boxMean(src, dst, tmp, width, height, r) {
  const n = 2 * r + 1;
  for (let y = 0; y < height; y += 1) {
    const row = y * width;
    let sum = 0;
    for (let k = -r; k <= r; k += 1) sum += src[row + Math.min(Math.max(k, 0), width - 1)];
    for (let x = 0; x < width; x += 1) {
      tmp[row + x] = sum / n;
      sum += src[row + Math.min(x + r + 1, width - 1)] - src[row + Math.max(x - r, 0)];
    }
  }
  for (let x = 0; x < width; x += 1) {
    let sum = 0;
    for (let k = -r; k <= r; k += 1) sum += tmp[Math.min(Math.max(k, 0), height - 1) * width + x];
    for (let y = 0; y < height; y += 1) {
      dst[y * width + x] = sum / n;
      sum +=
        tmp[Math.min(y + r + 1, height - 1) * width + x] - tmp[Math.max(y - r, 0) * width + x];
    }
  }
}

// Bilinear sampling positions from `coarse` cells to `coarse · factor` cells, pixel centres
// aligned (a fine pixel's centre x + 0.5 is at (x + 0.5) / factor in coarse units), edges clamped.
function taps(coarse, factor) {
  const fine = coarse * factor;
  const first = new Int32Array(fine);
  const second = new Int32Array(fine);
  const weight = new Float32Array(fine);
  for (let x = 0; x < fine; x += 1) {
    const u = Math.min(Math.max((x + 0.5) / factor - 0.5, 0), coarse - 1);
    first[x] = Math.floor(u);
    second[x] = Math.min(first[x] + 1, coarse - 1);
    weight[x] = u - first[x];
  }
  return { first, second, weight };
}

export class GuidedUpscaler {
  // `width` × `height`: the network's frame; `factor`: how many times larger the shown one is.
  constructor(width, height, factor) {
    this.width = width;
    this.height = height;
    this.factor = factor;
    const plane = width * height;
    this.fineLuma = new Float32Array(plane * factor * factor);
    this.coarseLuma = new Float32Array(plane);
    this.gain = new Float32Array(3 * plane);
    // The box means: of Y, Y², p and Y·p (p one channel at a time), and the sums' scratch.
    this.meanY = new Float32Array(plane);
    this.meanYY = new Float32Array(plane);
    this.meanP = new Float32Array(plane);
    this.meanYP = new Float32Array(plane);
    this.product = new Float32Array(plane);
    this.scratch = new Float32Array(plane);
    this.columns = taps(width, factor);
    this.rows = taps(height, factor);
  }

  // The camera's RGBA bytes at the shown size → the network's input (planar RGB floats in
  // [0, 1], each the mean of a factor × factor block), and the luminance at both sizes.
  prepare(pixels, input) {
    const { width, height, factor } = this;
    const fineWidth = width * factor;
    const plane = width * height;
    const fine = this.fineLuma;
    for (let i = 0, p = 0; i < fine.length; i += 1, p += 4) {
      fine[i] = (LUMA[0] * pixels[p] + LUMA[1] * pixels[p + 1] + LUMA[2] * pixels[p + 2]) / 255;
    }
    const block = 1 / (255 * factor * factor);
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let dy = 0; dy < factor; dy += 1) {
          let p = ((y * factor + dy) * fineWidth + x * factor) * 4;
          for (let dx = 0; dx < factor; dx += 1, p += 4) {
            r += pixels[p];
            g += pixels[p + 1];
            b += pixels[p + 2];
          }
        }
        const i = y * width + x;
        input[i] = r * block;
        input[i + plane] = g * block;
        input[i + 2 * plane] = b * block;
        this.coarseLuma[i] = (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b) * block;
      }
    }
    const Y = this.coarseLuma;
    boxMean(Y, this.meanY, this.scratch, width, height, RADIUS);
    for (let i = 0; i < plane; i += 1) this.product[i] = Y[i] * Y[i];
    boxMean(this.product, this.meanYY, this.scratch, width, height, RADIUS);
  }

  // The network's output (planar RGB, width × height, not clamped) → RGBA bytes at the size
  // shown.
  upscale(output, out) {
    const { width, height, factor, gain, meanY, meanYY, meanP, meanYP, product } = this;
    const plane = width * height;
    const Y = this.coarseLuma;
    for (let c = 0; c < 3; c += 1) {
      const p = output.subarray(c * plane, (c + 1) * plane);
      boxMean(p, meanP, this.scratch, width, height, RADIUS);
      for (let i = 0; i < plane; i += 1) product[i] = Y[i] * p[i];
      boxMean(product, meanYP, this.scratch, width, height, RADIUS);
      for (let i = 0; i < plane; i += 1) {
        const variance = meanYY[i] - meanY[i] * meanY[i];
        const slope = (meanYP[i] - meanY[i] * meanP[i]) / (variance + EPS);
        gain[c * plane + i] = Math.min(Math.max(slope, -GAIN_LIMIT), GAIN_LIMIT);
      }
    }
    const fineWidth = width * factor;
    const fineHeight = height * factor;
    const { first: x0, second: x1, weight: wx } = this.columns;
    const fine = this.fineLuma;
    for (let y = 0; y < fineHeight; y += 1) {
      const top = this.rows.first[y] * width;
      const bottom = this.rows.second[y] * width;
      const wy = this.rows.weight[y];
      for (let x = 0; x < fineWidth; x += 1) {
        const a = top + x0[x];
        const b = top + x1[x];
        const d = bottom + x0[x];
        const e = bottom + x1[x];
        const fx = wx[x];
        // The four taps' weights, shared by every plane sampled here.
        const wa = (1 - fx) * (1 - wy);
        const wb = fx * (1 - wy);
        const wd = (1 - fx) * wy;
        const we = fx * wy;
        const k = y * fineWidth + x;
        const detail = fine[k] - (wa * Y[a] + wb * Y[b] + wd * Y[d] + we * Y[e]);
        const o = k * 4;
        for (let c = 0, q = 0; c < 3; c += 1, q += plane) {
          const base =
            wa * output[q + a] + wb * output[q + b] + wd * output[q + d] + we * output[q + e];
          const slope = wa * gain[q + a] + wb * gain[q + b] + wd * gain[q + d] + we * gain[q + e];
          out[o + c] = (base + slope * detail) * 255; // a Uint8ClampedArray clamps and rounds
        }
        out[o + 3] = 255;
      }
    }
  }
}
