// Filled in by the KvStore.Realtime issue.
