// The article page: a clap button whose total is the key "claps" of the table "article:<id>".
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const rawId = new URLSearchParams(location.search).get("id") || "hello-kvstore";
  // Table names allow A-Z a-z 0-9 _ . : - (64 characters with the "article:" prefix).
  const id = rawId.replace(/[^A-Za-z0-9_.\-]/g, "-").slice(0, 56) || "hello-kvstore";
  const table = `article:${id}`;
  const key = "claps";

  let confirmed = 0;        // the committed total, from the server (answers and live changes)
  let confirmedRevision = 0;
  let pending = 0;          // clicks sent and not yet answered: shown optimistically

  const title = id.replace(/[-_.]+/g, " ").replace(/^./, (c) => c.toUpperCase());
  $("title").textContent = title;
  $("meta").textContent = `Table ${table}, key ${key}`;
  document.title = `${title} – KvStore claps`;

  const kv = new KvClient({
    onState: (state) => {
      $("state").textContent = state;
      $("state").dataset.state = state;
    },
    onPresence: (_t, subscribers) => { $("subscribers").textContent = String(subscribers); },
    onEntries: () => {
      const entry = kv.entries.get(key);
      if (entry) accept(entry);
      render();
    },
    onError: (error) => { $("message").textContent = error.message; },
  });

  function accept(entry) {
    if (entry.revision > confirmedRevision && typeof entry.value === "number") {
      confirmedRevision = entry.revision;
      confirmed = entry.value;
    }
  }

  function render() {
    $("claps").textContent = String(confirmed + pending);
    $("claps").dataset.confirmed = String(confirmed);
  }

  async function clap() {
    pending++;
    render();
    try {
      accept(await kv.increment(table, key, 1));
      $("message").textContent = "";
    } catch (error) {
      $("message").textContent = error.code === "rate_limited" ? "Slow down a little." : error.message;
    } finally {
      pending--;
      render();
    }
  }

  // Pointer: one clap on press, then repeated claps while held. Keyboard: Enter/Space click.
  const button = $("clap");
  let holdTimer = null;
  function stopHold() {
    if (holdTimer !== null) { clearTimeout(holdTimer); clearInterval(holdTimer); holdTimer = null; }
  }
  button.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    clap();
    stopHold();
    holdTimer = setTimeout(() => { holdTimer = setInterval(clap, 120); }, 400);
  });
  for (const type of ["pointerup", "pointerleave", "pointercancel", "blur"]) button.addEventListener(type, stopHold);
  button.addEventListener("click", (e) => { if (e.detail === 0) clap(); }); // keyboard activation
  button.addEventListener("contextmenu", (e) => e.preventDefault());

  (async () => {
    await kv.start();
    try {
      await kv.subscribe(table);
      button.disabled = false;
      render();
    } catch (error) {
      $("message").textContent = `${error.code || "error"}: ${error.message}`;
    }
  })();
})();
