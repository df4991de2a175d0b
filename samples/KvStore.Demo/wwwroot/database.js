// The realtime database page: one table's live entries, with add / edit / delete / TTL.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const stateBadge = $("state");
  const tbody = document.querySelector("#entries tbody");
  const message = $("message");

  const kv = new KvClient({
    onState: (state) => {
      stateBadge.textContent = state;
      stateBadge.dataset.state = state;
    },
    onPresence: (_table, subscribers) => { $("subscribers").textContent = String(subscribers); },
    onEntries: () => render(),
    onError: (error) => showMessage(error.message, true),
  });

  function showMessage(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", !!isError);
  }

  function ttlText(entry, now) {
    if (!entry.expiresAt) return "–";
    const ms = Date.parse(entry.expiresAt) - now;
    if (ms <= 0) return "expiring…";
    const s = Math.ceil(ms / 1000);
    return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  }

  function cell(row, label, className, content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (className) td.className = className;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function button(text, className, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.className = className;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function render() {
    const now = Date.now();
    const keys = Array.from(kv.entries.keys()).sort();
    tbody.replaceChildren();
    for (const key of keys) {
      const entry = kv.entries.get(key);
      const row = document.createElement("tr");
      row.dataset.key = key;
      cell(row, "Key", "key", key);
      const code = document.createElement("code");
      code.textContent = JSON.stringify(entry.value);
      cell(row, "Value", "value", code);
      cell(row, "Revision", "rev", String(entry.revision));
      const ttl = cell(row, "TTL", "ttl", ttlText(entry, now));
      if (entry.expiresAt) ttl.dataset.expiresAt = entry.expiresAt;
      const actions = cell(row, "Actions", "actions", "");
      actions.append(
        button("Edit", "secondary edit", `Edit ${key}`, () => edit(entry)),
        " ",
        button("Delete", "danger delete", `Delete ${key}`, () => remove(key)));
      tbody.appendChild(row);
    }
    $("count").textContent = String(keys.length);
    $("empty").hidden = keys.length > 0;
    $("revision").textContent = String(kv.revision);
    $("table-name").textContent = kv.table || "–";
  }

  // TTL countdown without re-rendering the rows.
  setInterval(() => {
    const now = Date.now();
    for (const td of tbody.querySelectorAll("td.ttl[data-expires-at]")) {
      td.textContent = ttlText({ expiresAt: td.dataset.expiresAt }, now);
    }
  }, 500);

  function edit(entry) {
    $("key").value = entry.key;
    $("value").value = JSON.stringify(entry.value, null, 2);
    $("ttl").value = entry.expiresAt ? String(Math.max(1, Math.ceil((Date.parse(entry.expiresAt) - Date.now()) / 1000))) : "";
    $("value").focus();
  }

  async function remove(key) {
    try {
      const result = await kv.delete(kv.table, key);
      showMessage(result.deleted ? `Deleted ${key} (revision ${result.revision}).` : `${key} was already gone.`);
    } catch (error) {
      showMessage(`${error.code || "error"}: ${error.message}`, true);
    }
  }

  $("put-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("key").value.trim();
    let value;
    try {
      value = JSON.parse($("value").value);
    } catch (error) {
      showMessage(`The value is not valid JSON: ${error.message}`, true);
      $("value").focus();
      return;
    }
    const ttl = $("ttl").value ? Number($("ttl").value) : null;
    try {
      const entry = await kv.put(kv.table, key, value, ttl ? { ttlMs: Math.round(ttl * 1000) } : null);
      showMessage(`Saved ${key} at revision ${entry.revision}.`);
    } catch (error) {
      showMessage(`${error.code || "error"}: ${error.message}`, true);
    }
  });

  async function open(table) {
    try {
      await kv.subscribe(table);
      const url = new URL(location.href);
      url.searchParams.set("table", table);
      history.replaceState(null, "", url);
      document.title = `${table} – KvStore realtime database`;
      showMessage("");
      render();
    } catch (error) {
      showMessage(`${error.code || "error"}: ${error.message}`, true);
    }
  }

  $("table-form").addEventListener("submit", (e) => {
    e.preventDefault();
    open($("table").value.trim());
  });

  (async () => {
    const table = new URLSearchParams(location.search).get("table") || "notes";
    $("table").value = table;
    await kv.start();
    await open(table);
  })();
})();
