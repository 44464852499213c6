// Light/dark theme: follows the system until toggled; the choice is kept.

const KEY = "flowrun.theme";
const root = document.documentElement;
const media = window.matchMedia("(prefers-color-scheme: dark)");

export function currentTheme() {
  return root.dataset.theme || (media.matches ? "dark" : "light");
}

export function setTheme(theme) {
  root.dataset.theme = theme;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    /* storage unavailable */
  }
  syncButton();
}

function syncButton() {
  const btn = document.getElementById("btn-theme");
  if (!btn) return;
  const dark = currentTheme() === "dark";
  btn.setAttribute("aria-pressed", String(dark));
  btn.title = dark ? "Switch to light theme" : "Switch to dark theme";
}

export function initTheme() {
  document.getElementById("btn-theme")?.addEventListener("click", () => {
    setTheme(currentTheme() === "dark" ? "light" : "dark");
  });
  media.addEventListener("change", syncButton);
  syncButton();
}
