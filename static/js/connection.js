// Whether the flowrun server can be reached. A request that cannot reach it turns a
// banner on and starts asking /api/health every few seconds; the first answer turns
// it off and tells the page (validation checks again, a lost run is looked up).

import { API } from "./api.js";
import { $ } from "./dom.js";

const banner = $("#offline-banner");
let offline = false;
let timer = null;

async function probe() {
  try {
    const res = await fetch(`${API}/health`, { credentials: "same-origin", cache: "no-store" });
    if (res.ok) return back();
  } catch {
    /* still down */
  }
  timer = setTimeout(probe, 2000);
}

function back() {
  if (!offline) return;
  offline = false;
  clearTimeout(timer);
  banner.hidden = true;
  document.dispatchEvent(new CustomEvent("flowrun:online"));
}

export function initConnection() {
  document.addEventListener("flowrun:unreachable", () => {
    if (offline) return;
    offline = true;
    banner.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(probe, 1500);
  });
  document.addEventListener("flowrun:reachable", back);
}
