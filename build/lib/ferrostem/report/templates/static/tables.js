// Report tables: sort by a header click, filter by a search box, paginate long tables, download as TSV.
// Inlined into the report so that it works offline as one file; no library is loaded.
(function () {
  "use strict";
  var PAGE = 25;

  function cellValue(row, column) {
    var cell = row.cells[column];
    return cell ? (cell.getAttribute("data-value") || cell.textContent).trim() : "";
  }

  function asNumber(text) {
    if (text === "" || /^NaN?$/i.test(text)) { return NaN; }  // blank, NA, NaN
    var number = Number(text.replace(/,/g, "").replace(/\u2212/g, "-"));
    return isNaN(number) ? NaN : number;
  }

  function compare(a, b) {
    var x = asNumber(a), y = asNumber(b);
    if (!isNaN(x) && !isNaN(y)) { return x - y; }
    if (!isNaN(x)) { return -1; }   // numbers before text and blanks
    if (!isNaN(y)) { return 1; }
    return a.localeCompare(b);
  }

  function tsv(table) {
    var lines = [];
    Array.prototype.forEach.call(table.rows, function (row) {
      lines.push(Array.prototype.map.call(row.cells, function (cell) {
        return (cell.getAttribute("data-value") || cell.textContent.trim()).replace(/[\t\n]+/g, " ");
      }).join("\t"));
    });
    return lines.join("\n") + "\n";
  }

  function enhance(table, number) {
    var body = table.tBodies[0];
    if (!body || !table.tHead) { return; }
    var rows = Array.prototype.slice.call(body.rows);
    var state = { filter: "", page: 0, column: -1, ascending: true };

    var box = document.createElement("div");
    box.className = "table-box";
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "Search " + rows.length + " rows";
    search.setAttribute("aria-label", "Search this table");
    var pager = document.createElement("span");
    pager.className = "pager";
    var download = document.createElement("a");
    download.textContent = "Download TSV";
    download.href = "data:text/tab-separated-values;charset=utf-8," + encodeURIComponent(tsv(table));
    download.download = (table.getAttribute("data-name") || ("table-" + number)) + ".tsv";
    tools.appendChild(search);
    tools.appendChild(pager);
    tools.appendChild(download);
    table.parentNode.insertBefore(tools, table);
    table.parentNode.insertBefore(box, table);
    box.appendChild(table);

    function visible() {
      var needle = state.filter.toLowerCase();
      return rows.filter(function (row) { return !needle || row.textContent.toLowerCase().indexOf(needle) >= 0; });
    }

    function draw() {
      var shown = visible();
      var pages = Math.max(1, Math.ceil(shown.length / PAGE));
      state.page = Math.min(state.page, pages - 1);
      rows.forEach(function (row) { row.style.display = "none"; });
      var first = rows.length > PAGE ? state.page * PAGE : 0;
      var last = rows.length > PAGE ? first + PAGE : shown.length;
      shown.slice(first, last).forEach(function (row) { row.style.display = ""; });
      pager.innerHTML = "";
      if (rows.length > PAGE) {
        var previous = document.createElement("button");
        previous.textContent = "\u2039";
        previous.disabled = state.page === 0;
        previous.onclick = function () { state.page -= 1; draw(); };
        var next = document.createElement("button");
        next.textContent = "\u203a";
        next.disabled = state.page >= pages - 1;
        next.onclick = function () { state.page += 1; draw(); };
        pager.appendChild(previous);
        pager.appendChild(document.createTextNode(" page " + (state.page + 1) + " of " + pages + " (" +
                                                  shown.length + " rows) "));
        pager.appendChild(next);
      } else if (state.filter) {
        pager.textContent = shown.length + " of " + rows.length + " rows";
      }
    }

    Array.prototype.forEach.call(table.tHead.rows[table.tHead.rows.length - 1].cells, function (header, column) {
      header.classList.add("sortable");
      header.title = "Click to sort";
      header.addEventListener("click", function () {
        state.ascending = state.column === column ? !state.ascending : true;
        state.column = column;
        rows.sort(function (a, b) {
          var order = compare(cellValue(a, column), cellValue(b, column));
          return state.ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        Array.prototype.forEach.call(header.parentNode.cells, function (cell) {
          cell.removeAttribute("aria-sort");
        });
        header.setAttribute("aria-sort", state.ascending ? "ascending" : "descending");
        draw();
      });
    });
    search.addEventListener("input", function () { state.filter = search.value; state.page = 0; draw(); });
    table.ferrostemFilter = function (text) { search.value = text; state.filter = text; state.page = 0; draw(); };
    draw();
  }

  function geneJump() {
    var form = document.getElementById("gene-jump");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var gene = form.elements.gene.value.trim();
      var status = document.getElementById("gene-jump-status");
      var first = null, hits = 0;
      Array.prototype.forEach.call(document.querySelectorAll("table.table"), function (table) {
        if (!table.ferrostemFilter) { return; }
        var matches = Array.prototype.some.call(table.tBodies[0].rows, function (row) {
          return Array.prototype.some.call(row.cells, function (cell) {
            return cell.textContent.trim().toUpperCase() === gene.toUpperCase();
          });
        });
        table.ferrostemFilter(matches ? gene : "");
        if (matches) { hits += 1; first = first || table; }
      });
      Array.prototype.forEach.call(document.querySelectorAll("figure[data-genes]"), function (figure) {
        var genes = figure.getAttribute("data-genes").toUpperCase().split(/\s+/);
        if (genes.indexOf(gene.toUpperCase()) >= 0) { hits += 1; first = first || figure; }
      });
      status.textContent = gene ? (hits ? hits + " tables or figures" : "not found") : "";
      if (first) { first.scrollIntoView({ block: "start" }); }
    });
  }

  // The SVG rides gzipped in the page (report.embed_figures); it is unpacked into a Blob for the download link.
  function gunzip(base64) {
    var bytes = Uint8Array.from(atob(base64), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).blob().then(function (blob) { return blob.slice(0, blob.size, "image/svg+xml"); });
  }

  function figureDownloads() {
    Array.prototype.forEach.call(document.querySelectorAll("figure"), function (figure, number) {
      var image = figure.querySelector("img[src^='data:image/png']");
      var caption = figure.querySelector("figcaption");
      if (!image || !caption) { return; }
      var name = (caption.textContent.trim().slice(0, 40).replace(/[^A-Za-z0-9]+/g, "_") || "figure") + "-" + (number + 1);
      var link = document.createElement("a");
      link.className = "figure-download";
      link.textContent = "PNG";
      link.title = "Download this figure (" + image.naturalWidth + " x " + image.naturalHeight + " px)";
      link.href = image.src;
      link.download = name + ".png";
      caption.appendChild(link);
      var svg = image.getAttribute("data-svg-gzip");
      if (!svg || typeof DecompressionStream === "undefined") { return; }
      var vector = document.createElement("a");
      vector.className = "figure-download";
      vector.textContent = "SVG";
      vector.title = "Download this figure as SVG (editable text; dense point layers embedded as images)";
      vector.download = name + ".svg";
      caption.appendChild(vector);
      gunzip(svg).then(function (blob) { vector.href = URL.createObjectURL(blob); vector.setAttribute("data-ready", ""); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.table:not(.facts)"), enhance);
    figureDownloads();
    geneJump();
  });
})();
