// Keyboard shortcuts (no inline script anywhere: the Content-Security-Policy forbids it).
// Queue: j / k move the selection, Enter or o opens it, x ticks it for a bulk action.
// Match page: c confirms, d focuses the dismiss reason, n / p go to the next / previous match in the queue
// order (URLs rendered server-side as data attributes), u goes back to the queue.
// Everywhere: ? opens or closes the shortcut list (a <details> element, so it also works without JS).
(function () {
  "use strict";
  var help = document.getElementById("shortcuts");
  var table = document.getElementById("queue");
  var nav = document.getElementById("match-nav");
  var rows = table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr")) : [];
  var current = -1;

  function select(index) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0) { rows[current].classList.remove("selected"); }
    current = index;
    rows[current].classList.add("selected");
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function go(url) {
    if (url) { window.location.assign(url); return true; }
    return false;
  }

  var tickAll = document.getElementById("tick-all");
  if (tickAll && table) {
    tickAll.addEventListener("change", function () {
      table.querySelectorAll("tbody input[name=ids]").forEach(function (box) { box.checked = tickAll.checked; });
    });
  }

  function onQueue(key) {
    if (key === "j") { select(current + 1); return true; }
    if (key === "k") { select(current - 1); return true; }
    if ((key === "Enter" || key === "o") && current >= 0) {
      var link = rows[current].querySelector("a[href]");
      return go(link && link.getAttribute("href"));
    }
    if (key === "x" && current >= 0) {
      var box = rows[current].querySelector("input[name=ids]");
      if (box) { box.checked = !box.checked; return true; }
    }
    return false;
  }

  function onMatch(key) {
    if (key === "n") { return go(nav.getAttribute("data-next-url")); }
    if (key === "p") { return go(nav.getAttribute("data-prev-url")); }
    if (key === "u") { return go(nav.getAttribute("data-queue-url")); }
    if (key === "c") {
      var form = document.getElementById("confirm-form");
      if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); return true; }
      return false;
    }
    if (key === "d") {
      var reason = document.getElementById("dismiss-reason");
      if (reason) { reason.focus(); reason.scrollIntoView({ block: "center" }); return true; }
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing ||
        /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(tag) || (event.target && event.target.isContentEditable)) { return; }
    var handled = false;
    if (event.key === "?" && help) { help.open = !help.open; handled = true; }
    else if (table) { handled = onQueue(event.key); }
    else if (nav) { handled = onMatch(event.key); }
    if (handled) { event.preventDefault(); }
  });
}());
