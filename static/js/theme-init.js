// Applies the saved theme before first paint (a classic, blocking script).
(function () {
  try {
    var saved = localStorage.getItem("flowrun.theme");
    if (saved === "dark" || saved === "light") {
      document.documentElement.dataset.theme = saved;
    }
  } catch (e) {
    /* storage unavailable: follow the system */
  }
})();
