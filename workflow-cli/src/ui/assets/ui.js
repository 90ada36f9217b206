// The workflow UI's script: local times, live refresh, timeline zoom, confirmations.
// Plain JavaScript, no dependencies; the pages work without it (minus these niceties).
(function () {
  "use strict";

  function localize(root) {
    root.querySelectorAll("time[data-ms]").forEach(function (t) {
      if (t.dataset.done) return;
      var d = new Date(Number(t.dataset.ms));
      t.title = "UTC " + d.toISOString() + " · local " + d.toLocaleString();
      var local = document.createElement("span");
      local.className = "local";
      local.textContent = " (" + d.toLocaleString() + " local)";
      t.appendChild(local);
      t.dataset.done = "1";
    });
  }

  var zoom = 1;
  function applyZoom() {
    var svg = document.getElementById("timeline-svg");
    if (svg) svg.style.width = zoom * 100 + "%";
  }

  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-zoom]") : null;
    if (!b) return;
    var k = b.getAttribute("data-zoom");
    zoom = k === "in" ? Math.min(zoom * 2, 1024) : k === "out" ? Math.max(zoom / 2, 1) : 1;
    applyZoom();
  });

  // Ctrl + wheel over the timeline zooms around the pointer.
  document.addEventListener("wheel", function (e) {
    var box = e.target.closest ? e.target.closest(".timeline") : null;
    if (!box || !e.ctrlKey) return;
    e.preventDefault();
    var rect = box.getBoundingClientRect();
    var at = (box.scrollLeft + e.clientX - rect.left) / (box.scrollWidth || 1);
    zoom = e.deltaY < 0 ? Math.min(zoom * 1.25, 1024) : Math.max(zoom / 1.25, 1);
    applyZoom();
    box.scrollLeft = at * box.scrollWidth - (e.clientX - rect.left);
  }, { passive: false });

  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) e.preventDefault();
  });

  // While something is open, fetch the page again every 2 s and swap its live part, keeping
  // what the reader opened and the timeline's zoom and scroll.
  function refresh() {
    if (document.body.dataset.live !== "1") return;
    if (document.hidden) { setTimeout(refresh, 2000); return; }
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var current = document.getElementById("live");
        if (!fresh || !current) return;
        var open = Array.prototype.map.call(current.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        var box = current.querySelector(".timeline");
        var scroll = box ? box.scrollLeft : 0;
        current.replaceWith(fresh);
        open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        applyZoom();
        var nbox = fresh.querySelector(".timeline");
        if (nbox) nbox.scrollLeft = scroll;
        localize(fresh);
        document.body.dataset.live = doc.body.dataset.live;
        var note = document.querySelector(".live-note");
        if (note && doc.body.dataset.live !== "1") note.textContent = "closed: no longer refreshing";
      })
      .catch(function () {})
      .then(function () { setTimeout(refresh, 2000); });
  }

  localize(document);
  setTimeout(refresh, 2000);
})();
