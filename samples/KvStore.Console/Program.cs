using System.Text.Json;
using KvStore;

// kvstore migrate <connection>  applies the schema migrations (safe to re-run)
// kvstore check <connection>    reports the server settings KvStore.Cdc needs
// kvstore demo <connection>     a tour of the API against that database
if (args.Length < 2 || args[0] is not ("migrate" or "check" or "demo"))
{
    Console.Error.WriteLine("usage: kvstore migrate|check|demo \"<connection string>\"");
    return 2;
}

var connectionString = args[1];
switch (args[0])
{
    case "migrate":
        var version = await KvSchema.MigrateAsync(connectionString);
        Console.WriteLine($"KvStore schema is at version {version}.");
        return 0;
    case "check":
        var check = await KvSchema.CheckServerAsync(connectionString);
        Console.WriteLine(check);
        foreach (var warning in check.Warnings)
        {
            Console.WriteLine("warning: " + warning);
        }

        return check.IsReady ? 0 : 1;
}

await using var kv = new KvStoreClient(new KvStoreOptions { ConnectionString = connectionString });
var table = "demo-" + DateTime.UtcNow.ToString("HHmmss");
void Show(string what, object? result) =>
    Console.WriteLine($"{what,-46} {JsonSerializer.Serialize(result, new JsonSerializerOptions { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } })}");

Console.WriteLine($"KvStore demo on table '{table}'\n");
var ada = await kv.PutAsync(table, "user:ada", new { name = "Ada", langs = new[] { "en", "fr" } });
Show("put user:ada", new { ada.Revision, ada.Value });
var grace = await kv.PutAsync(table, "user:grace", new { name = "Grace" });
Show("put user:grace", new { grace.Revision });
var updated = await kv.PutAsync(table, "user:ada", new { name = "Ada Lovelace" }, new KvPutOptions { IfRevision = ada.Revision });
Show("compare-and-set user:ada at its revision", new { updated.Revision, updated.CreatedRevision });
try
{
    await kv.PutAsync(table, "user:ada", new { name = "stale" }, new KvPutOptions { IfRevision = ada.Revision });
}
catch (KvConflictException conflict)
{
    Show("compare-and-set with a stale revision", new { conflict.Code, conflict.CurrentRevision });
}

for (var i = 0; i < 3; i++)
{
    await kv.IncrementAsync(table, "claps", 1);
}

Show("3 x increment claps", (await kv.GetAsync(table, "claps"))!.Value);
var batch = await kv.CommitAsync(new KvBatch(table)
    .Put("order:1", JsonDocument.Parse("""{"total":12.5}""").RootElement)
    .Put("order:2", JsonDocument.Parse("""{"total":7}""").RootElement)
    .Delete("user:grace"));
Show("batch (2 puts + 1 delete, atomic)", batch.Entries.Select(e => new { e.Key, e.Revision, e.State }));
var session = await kv.PutAsync(table, "session:x", "token", new KvPutOptions { Ttl = TimeSpan.FromMinutes(30) });
Show("put with TTL", new { session.ExpiresAt });
var page = await kv.ListAsync(table, prefix: "user:");
Show("list prefix user:", page.Entries.Select(e => e.Key));
var all = await kv.ListAsync(table);
Show("snapshot", new { all.Revision, keys = all.Entries.Select(e => e.Key) });
var changes = await kv.GetChangesAsync(table, afterRevision: 2);
Show("changes after revision 2 (tombstones too)", changes.Changes.Select(c => new { c.Key, c.Revision, c.State }));
try
{
    await kv.PutJsonAsync(table, "bad", "{not json"u8.ToArray());
}
catch (KvValidationException invalid)
{
    Show("bad input is rejected before any SQL", new { invalid.Code, invalid.Message });
}

Console.WriteLine($"\nTable '{table}' is at revision {await kv.GetTableRevisionAsync(table)}.");
return 0;
