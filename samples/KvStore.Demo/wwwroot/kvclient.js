// KvStore realtime client for browsers: the protocol of docs/protocol.md on top of the official
// @microsoft/signalr client (loaded before this file as the global `signalR`).
//
//   const kv = new KvClient({ onState, onEntries, onPresence, onError });
//   await kv.start();
//   await kv.subscribe("notes");           // snapshot, then every committed change
//   kv.entries                             // Map key -> Entry (live entries only)
//   await kv.put("notes", "a", {x: 1}, { ttlMs: 30000 });
//
// Rules it implements:
// - changes frames that arrive before the Subscribe result are buffered, then applied when newer;
// - the highest revision held for the table is kept, and anything at or below it is dropped
//   (at-least-once transport, exactly-once application); rows deleted by hand (`unversioned`) always apply;
// - large snapshots and change lists are completed over the HTTP API, skipping older page entries;
// - on reconnect (and on `resync`) it subscribes again with resumeFrom = the revision held;
//   `reset: true` replaces the state with the full snapshot;
// - it does the same when it sees it missed something: a frame whose `after` is above the revision
//   held, or a `progress` revision above it (never adopting that revision without the changes).
(function (global) {
  "use strict";

  /** The error code of a failed hub call: the word after "HubException: " (docs/protocol.md, Errors). */
  function errorCode(error) {
    const message = String((error && error.message) || error || "");
    const match = /HubException: ([a-z_]+)(?::|$)/.exec(message);
    return match ? match[1] : null;
  }

  /** The human part of a hub error, without SignalR's prefix. */
  function errorText(error) {
    const message = String((error && error.message) || error || "");
    const at = message.indexOf("HubException: ");
    return at >= 0 ? message.slice(at + "HubException: ".length) : message;
  }

  class KvError extends Error {
    constructor(error) {
      super(errorText(error));
      this.name = "KvError";
      this.code = errorCode(error);
      this.cause = error;
    }
  }

  class KvClient {
    /**
     * @param {object} options
     * @param {string} [options.hubUrl] default "/hubs/kv"
     * @param {string} [options.apiUrl] default "/v1"
     * @param {(state: string) => void} [options.onState] "connecting" | "connected" | "reconnecting" | "resumed" | "disconnected"
     * @param {(table: string, changed: object[], client: KvClient) => void} [options.onEntries] after every applied snapshot or change
     * @param {(table: string, subscribers: number) => void} [options.onPresence]
     * @param {(error: KvError) => void} [options.onError] background failures (resume, paging)
     */
    constructor(options) {
      this.options = Object.assign({ hubUrl: "/hubs/kv", apiUrl: "/v1" }, options || {});
      this.table = null;
      this.revision = 0;          // highest revision held for this.table
      this.entries = new Map();   // key -> Entry, live entries only
      this.keyRevisions = new Map(); // key -> last revision seen, deletes included (for paging)
      this.subscribers = 0;
      this.state = "disconnected";
      this._buffer = null;        // frames received while a Subscribe is in flight
      this._subscribeSeq = 0;
      this._stopped = false;

      this.connection = new signalR.HubConnectionBuilder()
        .withUrl(this.options.hubUrl)
        // Keep trying for as long as the page is open: a restarted server is picked up again.
        .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => Math.min(5000, 250 * Math.pow(2, ctx.previousRetryCount)) })
        .configureLogging(signalR.LogLevel.None)
        .build();

      this.connection.on("changes", (frame) => this._onChanges(frame));
      this.connection.on("progress", (message) => {
        // Everything up to message.revision has been sent: holding less means something was missed.
        if (message.table === this.table && this._buffer === null && message.revision > this.revision) {
          this._resubscribe();
        }
      });
      this.connection.on("presence", (message) => {
        if (message.table === this.table) {
          this._setPresence(message.subscribers);
        }
      });
      this.connection.on("resync", (message) => {
        // "*": a publisher in another process (Redis backplane) asks every subscription to resume.
        if (message.table === this.table || message.table === "*") {
          this._resubscribe();
        }
      });
      this.connection.onreconnecting(() => this._setState("reconnecting"));
      this.connection.onreconnected(() => this._resubscribe(true));
      // A close that automatic reconnect does not cover (e.g. the server closed without allowing it):
      // start again ourselves.
      this.connection.onclose(() => {
        if (this._stopped) {
          this._setState("disconnected");
          return;
        }
        this._setState("reconnecting");
        this._restartLater(1000);
      });
    }

    /** Connects; retries until the server answers. */
    async start() {
      this._stopped = false;
      this._setState("connecting");
      for (let attempt = 0; ; attempt++) {
        try {
          await this.connection.start();
          this._setState("connected");
          return;
        } catch (error) {
          if (this._stopped) throw error;
          if (attempt === 0) this._setState("reconnecting");
          await delay(Math.min(5000, 250 * Math.pow(2, attempt)));
        }
      }
    }

    async stop() {
      this._stopped = true;
      await this.connection.stop();
    }

    /**
     * Subscribes to `table` (a connection holds one table at a time): replaces the local state with a
     * snapshot, or with `resumeFrom` applies the changes after that revision.
     */
    async subscribe(table, resumeFrom) {
      const seq = ++this._subscribeSeq;
      const resuming = resumeFrom !== undefined && resumeFrom !== null && table === this.table;
      if (!resuming) {
        this.table = table;
        this.revision = 0;
        this.entries = new Map();
        this.keyRevisions = new Map();
      }
      this._buffer = [];
      let result;
      try {
        result = await this._invoke("Subscribe", table, resuming ? resumeFrom : null);
      } catch (error) {
        if (seq === this._subscribeSeq) this._buffer = null;
        throw error;
      }
      if (seq !== this._subscribeSeq) return result; // superseded by a newer subscribe

      const changed = [];
      if (result.mode === "snapshot") {
        // A fresh snapshot, or reset: true (history purged) -> replace everything.
        this.entries = new Map();
        this.keyRevisions = new Map();
        for (const entry of result.entries) this._applyEntry(entry, changed);
      } else {
        for (const entry of result.entries) this._applyEntry(entry, changed);
      }
      this.revision = Math.max(resuming ? this.revision : 0, result.revision);
      this._setPresence(result.subscribers);

      // Frames that raced the Subscribe result: apply those above the result's revision. Later
      // frames keep buffering until paging is done, so revisions stay in order.
      try {
        if (!result.complete) {
          if (result.mode === "snapshot") {
            await this._pageSnapshot(table, result.continueAfterKey, changed, seq);
          } else {
            await this._pageChanges(table, result.continueAfterRevision, changed, seq);
          }
        }
      } finally {
        if (seq === this._subscribeSeq) {
          const buffered = this._buffer || [];
          this._buffer = null;
          let gap = false;
          for (const frame of buffered) gap = !this._applyFrame(frame, changed) || gap;
          if (gap) this._resubscribe();
        }
      }
      this._emitEntries(changed);
      return result;
    }

    put(table, key, value, options) {
      return this._invoke("Put", table, key, value === undefined ? null : value, options || null);
    }

    delete(table, key, ifRevision) {
      return this._invoke("Delete", table, key, ifRevision === undefined ? null : ifRevision);
    }

    increment(table, key, delta) {
      return this._invoke("Increment", table, key, delta === undefined ? 1 : delta);
    }

    commit(table, operations) {
      return this._invoke("Commit", table, operations);
    }

    async _invoke(method, ...args) {
      try {
        return await this.connection.invoke(method, ...args);
      } catch (error) {
        throw new KvError(error);
      }
    }

    _onChanges(frame) {
      if (frame.table !== this.table) return;
      if (this._buffer !== null) {
        this._buffer.push(frame);
        return;
      }
      const changed = [];
      const continuous = this._applyFrame(frame, changed);
      this._emitEntries(changed);
      if (!continuous) this._resubscribe();
    }

    /** Applies a frame; false (and nothing applied) when it does not continue from the revision held. */
    _applyFrame(frame, changed) {
      if (typeof frame.after === "number" && frame.after > this.revision) return false;
      for (const change of frame.changes) {
        if (change.unversioned) {
          // Deleted by hand with SQL: took no revision, apply whatever we hold.
          this._applyEntry(change, changed, true);
        } else if (change.revision > this.revision) {
          this._applyEntry(change, changed);
          this.revision = change.revision;
        }
      }
      if (frame.revision > this.revision) this.revision = frame.revision;
      return true;
    }

    /** Applies one entry unless this key already holds a newer revision (deletes included). */
    _applyEntry(entry, changed, force) {
      const known = this.keyRevisions.get(entry.key);
      if (!force && known !== undefined && known >= entry.revision) return;
      if (!force) this.keyRevisions.set(entry.key, entry.revision);
      if (entry.op === "put") {
        this.entries.set(entry.key, entry);
      } else {
        this.entries.delete(entry.key);
      }
      changed.push(entry);
    }

    async _pageSnapshot(table, after, changed, seq) {
      while (after !== null && after !== undefined && seq === this._subscribeSeq) {
        const page = await this._get(`/tables/${encodeURIComponent(table)}/entries?limit=1000&after=${encodeURIComponent(after)}`);
        for (const entry of page.entries) this._applyEntry(entry, changed);
        after = page.next;
      }
    }

    async _pageChanges(table, after, changed, seq) {
      for (;;) {
        if (seq !== this._subscribeSeq) return;
        const page = await this._get(`/tables/${encodeURIComponent(table)}/changes?limit=1000&after=${after}`);
        if (!page.historyAvailable) {
          // Purged while we paged: start over with a snapshot.
          this._buffer = null;
          await this.subscribe(table);
          return;
        }
        for (const entry of page.changes) {
          this._applyEntry(entry, changed);
          if (entry.revision > this.revision) this.revision = entry.revision;
        }
        if (!page.hasMore || page.changes.length === 0) return;
        after = page.changes[page.changes.length - 1].revision;
      }
    }

    async _get(path) {
      const response = await fetch(this.options.apiUrl + path, { headers: { accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) {
        const error = new KvError(`HubException: ${body.code}: ${body.detail || body.title}`);
        throw error;
      }
      return body;
    }

    async _resubscribe(afterReconnect) {
      if (!this.table) {
        if (afterReconnect) this._setState("resumed");
        return;
      }
      try {
        await this.subscribe(this.table, this.revision);
        if (afterReconnect) this._setState("resumed");
      } catch (error) {
        this._report(error);
        if (afterReconnect) this._setState("resumed");
      }
    }

    _restartLater(ms) {
      setTimeout(async () => {
        if (this._stopped || this.connection.state !== signalR.HubConnectionState.Disconnected) return;
        try {
          await this.connection.start();
          await this._resubscribe(true);
        } catch {
          this._restartLater(Math.min(5000, ms * 2));
        }
      }, ms);
    }

    _setPresence(subscribers) {
      this.subscribers = subscribers;
      if (this.options.onPresence) this.options.onPresence(this.table, subscribers);
    }

    _setState(state) {
      this.state = state;
      if (this.options.onState) this.options.onState(state);
    }

    _emitEntries(changed) {
      if (this.options.onEntries) this.options.onEntries(this.table, changed, this);
    }

    _report(error) {
      if (this.options.onError) this.options.onError(error instanceof KvError ? error : new KvError(error));
    }
  }

  function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  global.KvClient = KvClient;
  global.KvError = KvError;
  global.kvErrorCode = errorCode;
})(window);
