/* firstlight: the little of jQuery, Bootstrap and bootstrap-table that Great Expectations'
   Data Docs call, so the pages work offline (their CDN scripts are removed when the site
   is built; see checks/data_docs.py). Tables are drawn in full: no paging or filters. */
(function () {
  "use strict";

  function Nodes(list) {
    this.nodes = Array.prototype.slice.call(list).filter(Boolean);
    this.length = this.nodes.length;
  }

  function $(what) {
    if (typeof what === "function") {
      ready(what);
      return new Nodes([]);
    }
    if (typeof what === "string") {
      try {
        return new Nodes(document.querySelectorAll(what));
      } catch (e) {
        return new Nodes([]);
      }
    }
    return new Nodes([what]);
  }

  function ready(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  var rowClicks = [];
  var proto = Nodes.prototype;
  proto.each = function (fn) {
    this.nodes.forEach(function (el, i) { fn.call(el, i, el); });
    return this;
  };
  proto.parent = function () {
    return new Nodes(this.nodes.map(function (el) { return el.parentElement; }));
  };
  proto.ready = function (fn) { ready(fn); return this; };
  proto.show = proto.fadeIn = function () {
    return this.each(function (i, el) { el.style.display = ""; });
  };
  proto.hide = proto.fadeOut = function () {
    return this.each(function (i, el) { el.style.display = "none"; });
  };
  proto.addClass = function (name) {
    return this.each(function (i, el) { el.classList.add(name); });
  };
  proto.removeClass = function (name) {
    return this.each(function (i, el) { el.classList.remove(name); });
  };
  proto.data = function (key) {
    var el = this.nodes[0];
    return el ? el.getAttribute("data-" + key) : undefined;
  };
  proto.modal = proto.tooltip = proto.popover = function () { return this; };
  proto.on = function (event, fn) {
    if (event.indexOf(".bs.table") >= 0) {
      this.each(function (i, el) { rowClicks.push({ table: el, fn: fn }); });
      return this;
    }
    var name = event.split(".")[0];
    return this.each(function (i, el) { el.addEventListener(name, fn); });
  };

  function named(value) {
    return typeof value === "string" && typeof window[value] === "function" ? window[value] : null;
  }

  proto.bootstrapTable = function (options) {
    if (typeof options !== "object" || options === null) {
      return this; // methods such as 'clearFilterControl': nothing to clear here
    }
    var columns = options.columns || [];
    var rows = (options.data || []).slice();
    var sortBy = options.sortName;
    columns.forEach(function (c) {
      if (c.field === sortBy && c.sortName) { sortBy = c.sortName; }
    });
    if (sortBy) {
      var sign = options.sortOrder === "desc" ? -1 : 1;
      rows.sort(function (a, b) {
        return a[sortBy] < b[sortBy] ? -sign : a[sortBy] > b[sortBy] ? sign : 0;
      });
    }
    var attributes = named(options.rowAttributes);
    return this.each(function (i, table) {
      var head = document.createElement("thead");
      var tr = document.createElement("tr");
      columns.forEach(function (c) {
        var th = document.createElement("th");
        th.textContent = c.title || c.field;
        tr.appendChild(th);
      });
      head.appendChild(tr);
      var body = document.createElement("tbody");
      rows.forEach(function (row, index) {
        var line = document.createElement("tr");
        var extra = attributes ? attributes(row, index) : {};
        Object.keys(extra).forEach(function (k) { line.setAttribute(k, extra[k]); });
        columns.forEach(function (c) {
          var td = document.createElement("td");
          td.innerHTML = row[c.field] === undefined ? "" : String(row[c.field]); // GE's own markup
          line.appendChild(td);
        });
        line.addEventListener("click", function (e) {
          if (e.target.closest("a")) { return; }
          rowClicks.filter(function (h) { return h.table === table; }).forEach(function (h) {
            h.fn.call(table, e, row, new Nodes([line]));
          });
        });
        body.appendChild(line);
      });
      table.innerHTML = "";
      table.classList.add("table", "firstlight-table");
      table.appendChild(head);
      table.appendChild(body);
    });
  };

  // Bootstrap's data-toggle="collapse" and "tab", which the pages use without calling them.
  document.addEventListener("click", function (e) {
    var toggle = e.target.closest("[data-toggle=collapse], [data-toggle=tab]");
    if (!toggle) { return; }
    var target = document.querySelector(toggle.getAttribute("href") || toggle.dataset.target);
    if (!target) { return; }
    e.preventDefault();
    if (toggle.dataset.toggle === "collapse") {
      target.classList.toggle("show");
      return;
    }
    Array.prototype.forEach.call(target.parentElement.children, function (pane) {
      pane.classList.toggle("active", pane === target);
      pane.classList.toggle("show", pane === target);
    });
  });

  window.$ = window.jQuery = $;
})();
