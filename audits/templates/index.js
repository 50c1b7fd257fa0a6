(function () {
  "use strict";
  var table = document.getElementById("reports");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  // Each filter: its element, its name in the address (#verdict=需整改&year=2024) and its test.
  function words(text) { return " " + text + " "; }
  var filters = [
    {id: "q", key: "q", test: function (row, v) { return row.textContent.toLowerCase().indexOf(v.toLowerCase()) >= 0; }},
    {id: "f-verdict", key: "verdict", test: function (row, v) { return row.dataset.verdict === v; }},
    {id: "f-category", key: "category", test: function (row, v) { return words(row.dataset.categories).indexOf(words(v)) >= 0; }},
    {id: "f-rule", key: "rule", test: function (row, v) { return words(row.dataset.rules).indexOf(words(v)) >= 0; }},
    {id: "f-decision", key: "decision", test: function (row, v) { return words(row.dataset.decisions).indexOf(words(v)) >= 0; }},
    {id: "f-year", key: "year", test: function (row, v) { return row.dataset.year === v; }},
    {id: "f-region", key: "region", test: function (row, v) { return row.dataset.region.indexOf(v) >= 0; }}
  ];
  filters.forEach(function (f) { f.el = document.getElementById(f.id); });
  function filter() {
    var active = filters.map(function (f) { return [f, f.el.value.trim()]; }).filter(function (p) { return p[1]; });
    rows.forEach(function (row) {
      row.hidden = !active.every(function (p) { return p[0].test(row, p[1]); });
    });
    // The filters live in the address, so that a reload, a bookmark or a forwarded link keeps them.
    var state = new URLSearchParams();
    active.forEach(function (p) { state.set(p[0].key, p[1]); });
    var hash = state.toString();
    if (hash !== location.hash.replace(/^#/, "")) {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    }
  }
  function restore() {
    var state = new URLSearchParams(location.hash.replace(/^#/, ""));
    filters.forEach(function (f) {
      var v = state.get(f.key) || "";
      if (f.el.tagName === "SELECT" && v && !Array.prototype.some.call(f.el.options, function (o) { return o.value === v; })) { v = ""; }
      f.el.value = v;
    });
    filter();
  }
  filters.forEach(function (f) { f.el.addEventListener("input", filter); f.el.addEventListener("change", filter); });
  window.addEventListener("hashchange", restore);
  restore();
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.style.cursor = "pointer";
    th.addEventListener("click", function () {
      var numeric = th.dataset.sort === "num";
      var dir = th.dataset.dir === "asc" ? -1 : 1;
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        if (numeric) { return dir * ((parseFloat(x) || 0) - (parseFloat(y) || 0)); }
        return dir * x.localeCompare(y, "zh-CN");
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
}());
