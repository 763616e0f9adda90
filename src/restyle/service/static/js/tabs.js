// Tabs (WAI-ARIA tabs pattern: arrow keys move between tabs): the photo, the live camera, the
// history.

import { $, live } from "./page.js";

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (tab.id !== "tab-live") live.stop(); // release the camera when it is not shown
  window.history.replaceState(null, "", tab.id === "tab-live" ? "#live" : "#");
}

export function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next);
    });
  }
  if (window.location.hash === "#live") selectTab($("tab-live"));
}
