// The page's router: #/jobs, #/jobs/{id}, #/studies, #/studies/{id}, #/compare?jobs=a,b or
// #/compare?study=id.

import { UNAUTHORIZED_EVENT } from "./api.js";
import { ensureSignedIn, installSignOut, promptForKey } from "./auth.js";
import { compareView } from "./compare-view.js";
import { replace } from "./dom.js";
import { jobView } from "./job-view.js";
import { jobsView } from "./jobs-view.js";
import { notice } from "./status.js";
import { studiesView } from "./studies-view.js";
import { studyView } from "./study-view.js";

const root = document.getElementById("view");
let current = null;

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

function highlight(section) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function stop() {
  current?.abort();
  current = null;
}

function render() {
  stop();
  current = new AbortController();
  const { parts, params } = parseHash();
  const [section = "jobs", id] = parts;
  highlight(section);
  if (section === "jobs" && id) return jobView(root, id, current.signal);
  if (section === "studies" && id) return studyView(root, id, current.signal);
  if (section === "studies") return studiesView(root, params, current.signal);
  if (section === "compare") return compareView(root, params, current.signal);
  if (section === "jobs") return jobsView(root, params, current.signal);
  replace(root, notice("There is no such page.", "error"));
}

async function start() {
  installSignOut(() => { stop(); replace(root); }, render);
  window.addEventListener(UNAUTHORIZED_EVENT, async (event) => {
    stop();
    await promptForKey(`Your key was refused (${event.detail}). Enter a valid key.`);
    render();
  });
  window.addEventListener("hashchange", render);
  await ensureSignedIn();
  render();
}

start();
