// Video mode (placeholder while it is built): the Photo / Video tabs.
const $ = (id) => document.getElementById(id);
function setMode(video) {
  $("photo-mode").hidden = video;
  $("video-mode").hidden = !video;
  $("tab-photo").setAttribute("aria-pressed", String(!video));
  $("tab-video").setAttribute("aria-pressed", String(video));
}
$("tab-photo").addEventListener("click", () => setMode(false));
$("tab-video").addEventListener("click", () => setMode(true));
