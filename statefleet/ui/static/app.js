// statefleet UI: live regions, actions without reloads, local times, theme. No dependencies.
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var store = {
    get: function (key, fallback) {
      try { var v = localStorage.getItem("statefleet." + key); return v === null ? fallback : v; }
      catch (e) { return fallback; }
    },
    set: function (key, value) { try { localStorage.setItem("statefleet." + key, value); } catch (e) { /* ignore */ } }
  };

  // ------------------------------------------------------------------ times, in the browser's zone
  var absolute = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });

  function ago(ms) {
    var s = Math.round((Date.now() - ms) / 1000), future = s < 0;
    s = Math.abs(s);
    var text = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" :
      s < 86400 ? Math.floor(s / 3600) + " h" : Math.floor(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }

  function formatTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("datetime"));
      if (isNaN(ms)) { return; }
      var local = absolute.format(new Date(ms));
      if (el.dataset.format === "relative") {
        el.textContent = ago(ms);
        el.title = local;
      } else {
        el.textContent = local;
        el.title = ago(ms) + " · " + el.getAttribute("datetime");
      }
    });
  }

  // ------------------------------------------------------------------ toasts
  var toastTimer = null;
  function toast(text, isError) {
    var el = document.getElementById("toast");
    if (!el) { return; }
    el.textContent = text;
    el.className = "toast" + (isError ? " toast-error" : "");
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, isError ? 8000 : 4000);
  }

  // ------------------------------------------------------------------ live regions
  var busy = false;
  var dot = document.getElementById("live-dot");

  function selectedIn(region) {
    var keep = {};
    region.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      keep[box.name + "=" + box.value] = true;
    });
    return keep;
  }

  function refresh() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length || busy) { return Promise.resolve(); }
    busy = true;
    if (dot) { dot.classList.add("busy"); }
    return fetch(location.href, { headers: { "Accept": "text/html", "X-Live": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (!next) { return; }
          if (region.contains(document.activeElement) && document.activeElement.matches("input[type=text],input[type=search],textarea,select")) {
            return;  // the user is typing there
          }
          var keep = selectedIn(region);
          var open = {};
          region.querySelectorAll("details[id][open]").forEach(function (d) { open[d.id] = true; });
          region.replaceWith(next);
          next.querySelectorAll("input[type=checkbox]").forEach(function (box) {
            if (keep[box.name + "=" + box.value]) { box.checked = true; }
          });
          next.querySelectorAll("details[id]").forEach(function (d) { if (open[d.id]) { d.open = true; } });
          formatTimes(next);
          updateSelection(next);
        });
        if (dot) { dot.classList.remove("stale"); }
      })
      .catch(function () { if (dot) { dot.classList.add("stale"); } })
      .then(function () { busy = false; if (dot) { dot.classList.remove("busy"); } });
  }

  var timer = null;
  function schedule() {
    clearInterval(timer);
    var every = parseInt(store.get("interval", "5000"), 10);
    if (dot) { dot.classList.toggle("off", !every); }
    if (every > 0) {
      timer = setInterval(function () { if (document.visibilityState === "visible") { refresh(); } }, every);
    }
  }

  // ------------------------------------------------------------------ actions (forms posting to the API)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-action]")) { return; }
    event.preventDefault();
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) { return; }
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    var data = submitter ? new FormData(form, submitter) : new FormData(form);
    var method = (form.getAttribute("method") || "post").toUpperCase();
    if (submitter) { submitter.disabled = true; }
    fetch(action, {
      method: method,
      body: new URLSearchParams(data),
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin"
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) { throw new Error(body.error || (response.status + " " + response.statusText)); }
          return body;
        });
      })
      .then(function (body) {
        var then = form.dataset.then;
        if (then === "execution" && body.id) { location.href = "/executions/" + encodeURIComponent(body.id); return; }
        if (then === "batch" && body.id) { location.href = "/batches/" + encodeURIComponent(body.id); return; }
        if (then === "back" && form.dataset.back) { location.href = form.dataset.back; return; }
        var text = body.message;
        if (!text && body.action !== undefined) {
          text = body.action + ": " + body.done + " done";
          var skipped = body.skipped ? Object.keys(body.skipped) : [];
          if (skipped.length) { text += ", " + skipped.length + " skipped (" + body.skipped[skipped[0]] + ")"; }
        }
        toast(text || "done", false);
        form.querySelectorAll("input[name=ids]:checked").forEach(function (box) { box.checked = false; });
        return refresh();
      })
      .catch(function (error) { toast(error.message, true); })
      .then(function () { if (submitter) { submitter.disabled = false; } });
  });

  // ------------------------------------------------------------------ selection, copy, navigation
  function updateSelection(root) {
    (root || document).querySelectorAll("[data-selection-count]").forEach(function (el) {
      var form = document.getElementById(el.dataset.selectionCount);
      var n = form ? form.querySelectorAll("input[name=ids]:checked").length : 0;
      el.textContent = n ? n + " selected" : "";
      (form ? form.querySelectorAll("[data-needs-selection]") : []).forEach(function (button) {
        button.disabled = n === 0;
      });
    });
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("input[data-select-all]")) {
      var form = el.form;
      if (form) { form.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = el.checked; }); }
      updateSelection();
    } else if (el.matches("input[name=ids]")) {
      updateSelection();
    } else if (el.matches("select[data-navigate]")) {
      location.href = el.value;
    } else if (el.id === "theme-select") {
      store.set("theme", el.value);
      document.documentElement.setAttribute("data-theme", el.value);
    } else if (el.id === "live-interval") {
      store.set("interval", el.value);
      schedule();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    event.preventDefault();
    var text = button.dataset.copy;
    (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject())
      .then(function () { toast("copied " + text, false); }, function () { toast(text, false); });
  });

  // ------------------------------------------------------------------ time filters in the browser's zone
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  document.querySelectorAll("input[data-local-time]").forEach(function (input) {
    var ms = Date.parse(input.value);
    if (input.value && /(Z|[+-]\d\d:?\d\d)$/.test(input.value) && !isNaN(ms)) {
      var d = new Date(ms);
      input.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get" || !form.querySelector("input[data-local-time]")) { return; }
    event.preventDefault();
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      var input = form.elements[key];
      if (value && input && input.hasAttribute && input.hasAttribute("data-local-time")) {
        value = new Date(value).toISOString();
      }
      if (value) { params.append(key, value); }
    });
    location.href = form.getAttribute("action") + "?" + params.toString();
  });

  // ------------------------------------------------------------------ start
  var theme = document.getElementById("theme-select");
  if (theme) { theme.value = store.get("theme", "system"); }
  var interval = document.getElementById("live-interval");
  if (interval) { interval.value = store.get("interval", "5000"); }
  formatTimes(document);
  updateSelection();
  schedule();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { refresh(); }
  });
  window.statefleet = { refresh: refresh, toast: toast };
})();
