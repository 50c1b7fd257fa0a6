(function () {
  "use strict";
  var table = document.getElementById("reports");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var inputs = ["q", "f-verdict", "f-category", "f-year", "f-region", "f-rule"].map(function (id) { return document.getElementById(id); });
  function filter() {
    var q = inputs[0].value.trim().toLowerCase(), verdict = inputs[1].value, category = inputs[2].value;
    var year = inputs[3].value.trim(), region = inputs[4].value.trim(), rule = inputs[5].value;
    rows.forEach(function (row) {
      var show = (!q || row.textContent.toLowerCase().indexOf(q) >= 0) &&
        (!verdict || row.dataset.verdict === verdict) &&
        (!category || (" " + row.dataset.categories + " ").indexOf(" " + category + " ") >= 0) &&
        (!rule || (" " + row.dataset.rules + " ").indexOf(" " + rule + " ") >= 0) &&
        (!year || row.dataset.year === year) &&
        (!region || row.dataset.region.indexOf(region) >= 0);
      row.hidden = !show;
    });
  }
  inputs.forEach(function (el) { el.addEventListener("input", filter); el.addEventListener("change", filter); });
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
