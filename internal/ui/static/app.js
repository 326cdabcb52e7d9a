// mxgateway dashboard: the live parts of the server-rendered pages.
// No inline script anywhere (the Content-Security-Policy forbids it); all
// text is set with textContent, never parsed as HTML, except the browse
// tree's fragments, which the server renders with html/template.
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const status = (text) => {
    const el = document.getElementById("live-status");
    if (el) el.textContent = text;
  };

  // live opens a server-sent-events stream and dispatches its events.
  function live(url, handlers) {
    const es = new EventSource(url);
    es.onopen = () => status("Live: connected");
    es.onerror = () => status("Live: reconnecting…");
    es.addEventListener("logout", () => { es.close(); window.location.assign("/ui/login"); });
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    }
    return es;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function overview(root) {
    live(root.dataset.live, {
      overview: (d) => {
        for (const el of root.querySelectorAll("[data-k]")) {
          const k = el.dataset.k;
          if (k === "ready") {
            el.textContent = d.ready ? "ready" : "not ready";
            el.className = "big " + (d.ready ? "ok" : "bad");
          } else if (k === "checks") {
            el.replaceChildren(...d.checks.map((c) => {
              const li = document.createElement("li");
              li.append(c.name + ": ");
              const s = document.createElement("span");
              s.className = c.err ? "bad" : "ok";
              s.textContent = c.err ? "failed: " + c.err : "ok";
              li.appendChild(s);
              return li;
            }));
          } else if (k in d) {
            el.textContent = String(d[k]);
          }
        }
      },
    });
  }

  function sessions(table) {
    const body = table.tBodies[0];
    live(table.dataset.live, {
      sessions: (rows) => {
        body.replaceChildren(...rows.map((r) => {
          const tr = document.createElement("tr");
          tr.dataset.id = r.id;
          const a = document.createElement("a");
          a.href = "/ui/sessions/" + encodeURIComponent(r.id);
          a.textContent = r.id;
          cell(tr, "").appendChild(a);
          cell(tr, r.client);
          cell(tr, r.owner);
          cell(tr, r.state);
          cell(tr, r.pid);
          cell(tr, r.backend);
          cell(tr, r.subscribers);
          cell(tr, r.queued);
          cell(tr, r.commands);
          cell(tr, r.health);
          cell(tr, r.opened);
          return tr;
        }));
      },
    });
  }

  const maxEventRows = 500;

  function events(table) {
    const body = table.tBodies[0];
    live(table.dataset.live, {
      events: (rows) => {
        for (const r of rows) {
          const tr = document.createElement("tr");
          cell(tr, r.time);
          cell(tr, r.session);
          cell(tr, r.seq);
          cell(tr, r.family);
          cell(tr, r.item);
          cell(tr, r.value);
          cell(tr, r.quality);
          body.insertBefore(tr, body.firstChild);
        }
        while (body.rows.length > maxEventRows) body.deleteRow(-1);
      },
      missed: (n) => status("Live: " + n + " events were too fast to show"),
    });
  }

  async function post(url, fields) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const resp = await fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch" },
    });
    if (resp.status === 401) { window.location.assign("/ui/login"); return null; }
    return resp.json().catch(() => ({ ok: resp.ok, error: resp.statusText }));
  }

  async function getFragment(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (resp.status === 401) { window.location.assign("/ui/login"); return null; }
    const text = await resp.text();
    if (!resp.ok) throw new Error(text);
    // The fragment is html/template output from our own origin.
    return document.createRange().createContextualFragment(text);
  }

  function browse() {
    const tree = document.getElementById("tree");
    const object = document.getElementById("object");
    const watchErr = document.getElementById("watch-error");
    const showErr = (msg) => {
      if (!watchErr) return;
      watchErr.textContent = msg || "";
      watchErr.hidden = !msg;
    };
    if (tree) {
      tree.addEventListener("click", async (e) => {
        const t = e.target;
        if (t.classList.contains("toggle")) {
          const li = t.closest("li");
          const open = t.getAttribute("aria-expanded") === "true";
          const sub = li.querySelector(":scope > ul");
          if (open) {
            if (sub) sub.hidden = true;
            t.setAttribute("aria-expanded", "false");
            t.textContent = "+";
          } else {
            if (sub) sub.hidden = false;
            else {
              try {
                const frag = await getFragment("/ui/browse/children?parent=" + encodeURIComponent(t.dataset.tag));
                if (frag) li.appendChild(frag);
              } catch (err) { showErr(String(err.message || err)); }
            }
            t.setAttribute("aria-expanded", "true");
            t.textContent = "−";
          }
        } else if (t.classList.contains("obj")) {
          e.preventDefault();
          for (const a of tree.querySelectorAll(".obj.selected")) a.classList.remove("selected");
          t.classList.add("selected");
          try {
            const frag = await getFragment("/ui/browse/object?tag=" + encodeURIComponent(t.dataset.tag));
            if (frag) object.replaceChildren(frag);
          } catch (err) { object.textContent = String(err.message || err); }
        }
      });
    }
    document.addEventListener("click", async (e) => {
      const t = e.target;
      if (t.classList.contains("watch-add")) {
        t.disabled = true;
        const r = await post("/ui/browse/watch", { ref: t.dataset.ref });
        t.disabled = false;
        if (r) showErr(r.ok ? "" : r.error);
      } else if (t.classList.contains("watch-remove")) {
        const r = await post("/ui/browse/unwatch", { ref: t.dataset.ref });
        if (r) showErr(r.ok ? "" : r.error);
      }
    });
    const table = document.getElementById("watch");
    if (!table) return;
    const body = table.tBodies[0];
    live(table.dataset.live, {
      watch: (rows) => {
        body.replaceChildren(...rows.map((r) => {
          const tr = document.createElement("tr");
          tr.dataset.ref = r.ref;
          cell(tr, r.ref, "ref");
          cell(tr, r.value, "value");
          cell(tr, r.quality, "quality");
          cell(tr, r.time, "time");
          cell(tr, r.changes, "changes");
          const td = cell(tr, r.err, r.err ? "bad" : "");
          const b = document.createElement("button");
          b.type = "button";
          b.className = "watch-remove";
          b.dataset.ref = r.ref;
          b.textContent = "Remove";
          td.appendChild(b);
          return tr;
        }));
      },
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    const el = (id) => document.getElementById(id);
    if (page === "overview" && el("overview")) overview(el("overview"));
    if (page === "sessions" && el("sessions")) sessions(el("sessions"));
    if (page === "events" && el("events")) events(el("events"));
    if (page === "browse") browse();
  });
})();
