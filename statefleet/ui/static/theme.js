// Applied before the page paints: the theme chosen (localStorage), else the system's.
(function () {
  var theme = "system";
  try { theme = localStorage.getItem("statefleet.theme") || "system"; } catch (e) { /* private mode */ }
  document.documentElement.setAttribute("data-theme", theme);
})();
