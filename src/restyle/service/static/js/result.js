// A finished job's result: the picture with its before/after slider (or the video), its
// download, and the offer to make its painting a style of its own.

import { $, engineNamed, state } from "./page.js";
import { isPersonal } from "./refine.js";

export function showResult(job, fields, name, photoUrl, status) {
  const video = status.kind === "video";
  const player = $("result-video");
  player.hidden = !video;
  $("compare").hidden = $("compare-legend").hidden = video;
  if (video) {
    player.src = job.resultUrl; // served with byte ranges: the player can seek
    $("result-image").removeAttribute("src");
  } else {
    player.removeAttribute("src");
    player.load(); // stop fetching a previous video
    $("result-image").src = job.resultUrl;
    $("result-before").src = photoUrl;
  }
  const download = $("download");
  download.href = job.resultUrl;
  const extension = fields.format === "jpeg" ? "jpg" : fields.format;
  download.download = `restyle-${name.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}.${extension}`;
  // A picture from an engine a personal style can be refined from (its network is where the
  // training starts): its painting (uploaded, or a gallery one) may become a style of its own.
  // Not offered under a video's result.
  const refinable = engineNamed(fields.method)?.capabilities?.refine_source;
  state.refineSource = refinable && !video ? refineSource(fields) : null;
  $("refine-offer").hidden = !state.refineSource;
  $("result").hidden = false;
  $("result").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// What a refinement of this job's style would train from: the uploaded painting, or a gallery
// style's painting (sent by id, named after its title). A personal style is a trained network
// already: nothing to offer.
function refineSource(fields) {
  if (fields.style_image) {
    return { painting: fields.style_image, name: fields.style_image.name.replace(/\.[^.]*$/, "") };
  }
  if (fields.style && !isPersonal(fields.style)) {
    return { style: fields.style, name: state.styles.get(fields.style)?.title || fields.style };
  }
  return null;
}
