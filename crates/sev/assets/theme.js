// Applies a saved theme choice before the page paints (no flash of the other theme).
(function () {
  try {
    var t = localStorage.getItem("sev-theme");
    if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
  } catch (e) { /* storage disabled: follow the system */ }
})();
