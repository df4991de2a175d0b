using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace KvStore.Realtime.Tests;

public sealed class RealtimeHttpTests(RealtimeFixture fx) : IClassFixture<RealtimeFixture>, IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(fx.Host.BaseUrl) };

    private static string NewTable(string prefix = "t") => prefix + "-" + Guid.NewGuid().ToString("N")[..10];

    private KvStoreClient Kv => (KvStoreClient)fx.Host.Services.GetService(typeof(KvStoreClient))!;

    public void Dispose() => _http.Dispose();

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    [Fact]
    public async Task Put_get_list_delete_and_changes_round_trip_with_revisions()
    {
        var table = NewTable();
        var put = await _http.PutAsync($"/v1/tables/{table}/entries/a%2Fb", Body("""{"value":{"n":1},"ttlMs":60000}"""));
        var entry = await put.Content.ReadFromJsonAsync<KvEntryDto>(JsonSerializerOptions.Web);
        var get = await _http.GetFromJsonAsync<KvEntryDto>($"/v1/tables/{table}/entries/a%2Fb", JsonSerializerOptions.Web);
        await _http.PutAsync($"/v1/tables/{table}/entries/c", Body("""{"value":"x"}"""));
        var list = await _http.GetFromJsonAsync<KvPageDto>($"/v1/tables/{table}/entries?limit=10", JsonSerializerOptions.Web);
        var delete = await _http.DeleteAsync($"/v1/tables/{table}/entries/c");
        var changes = await _http.GetFromJsonAsync<KvChangesDto>($"/v1/tables/{table}/changes?after=1", JsonSerializerOptions.Web);

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("\"1\"", put.Headers.ETag?.Tag);
        Assert.Equal("a/b", entry!.Key);
        Assert.NotNull(entry.ExpiresAt);
        Assert.Equal(1, get!.Value!.Value.GetProperty("n").GetInt32());
        Assert.Equal(["a/b", "c"], list!.Entries.Select(e => e.Key));
        Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        Assert.Equal("c:delete", changes!.Changes.Single().Key + ":" + changes.Changes.Single().Op);
        Assert.True(changes.HistoryAvailable);
    }

    [Fact]
    public async Task If_match_and_if_none_match_are_compare_and_set()
    {
        var table = NewTable();
        var created = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Put, $"/v1/tables/{table}/entries/k")
        {
            Content = Body("""{"value":1}"""),
            Headers = { IfNoneMatch = { EntityTagHeaderValue.Any } },
        });
        var again = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Put, $"/v1/tables/{table}/entries/k")
        {
            Content = Body("""{"value":2}"""),
            Headers = { IfNoneMatch = { EntityTagHeaderValue.Any } },
        });
        var stale = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Put, $"/v1/tables/{table}/entries/k")
        {
            Content = Body("""{"value":3}"""),
            Headers = { IfMatch = { new EntityTagHeaderValue("\"7\"") } },
        });
        var fresh = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Put, $"/v1/tables/{table}/entries/k")
        {
            Content = Body("""{"value":4}"""),
            Headers = { IfMatch = { new EntityTagHeaderValue("\"1\"") } },
        });

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, again.StatusCode);
        var problem = await ProblemAsync(stale);
        Assert.Equal(412, (int)stale.StatusCode);
        Assert.Equal("conflict", problem.GetProperty("code").GetString());
        Assert.Equal(1, problem.GetProperty("currentRevision").GetInt64());
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal(4, (await Kv.GetAsync(table, "k"))!.Value.GetInt32());
    }

    public static TheoryData<string, string, string, int, string> BadRequests => new()
    {
        { "PUT", "/v1/tables/bad%20table/entries/k", """{"value":1}""", 400, "invalid_table" },
        { "PUT", "/v1/tables/{t}/entries/k", """{"value":1,"ttlMs":0}""", 400, "invalid_ttl" },
        { "PUT", "/v1/tables/{t}/entries/k", """{"novalue":1}""", 400, "invalid_request" },
        { "PUT", "/v1/tables/{t}/entries/k", """{"value":""", 400, "invalid_json" },
        { "PUT", "/v1/tables/{t}/entries/k", """{"value":1,"ifRevision":"x"}""", 400, "invalid_argument" },
        { "PUT", "/v1/tables/{t}/entries/k", "", 400, "invalid_request" },
        { "POST", "/v1/tables/{t}/entries/k/increment", """{"delta":"many"}""", 400, "invalid_argument" },
        { "POST", "/v1/tables/{t}/commit", """{"operations":[{"op":"put","key":"a","value":1},{"op":"explode","key":"b"}]}""", 400, "invalid_argument" },
        { "POST", "/v1/tables/{t}/commit", """{"operations":[]}""", 400, "invalid_argument" },
        { "GET", "/v1/tables/{t}/entries?limit=5000", "", 400, "invalid_argument" },
        { "GET", "/v1/tables/{t}/entries/missing", "", 404, "not_found" },
        { "PUT", "/v1/tables/secret-x/entries/k", """{"value":1}""", 403, "forbidden" },
        { "GET", "/v1/tables/secret-x/entries/k", "", 403, "forbidden" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_requests_get_problem_details_with_a_code_and_write_nothing(string method, string path, string body, int status, string code)
    {
        var table = NewTable();
        var request = new HttpRequestMessage(new HttpMethod(method), path.Replace("{t}", table, StringComparison.Ordinal));
        if (method != "GET")
        {
            request.Content = Body(body);
        }

        var response = await _http.SendAsync(request);
        var problem = await ProblemAsync(response);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.Equal(0, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Oversized_bodies_are_rejected_with_413()
    {
        var table = NewTable();
        var huge = "{\"value\":\"" + new string('x', 2 * 1024 * 1024) + "\"}";
        var response = await _http.PutAsync($"/v1/tables/{table}/entries/k", Body(huge));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("value_too_large", (await ProblemAsync(response)).GetProperty("code").GetString());
        Assert.Equal(0, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Increment_and_commit_over_http_answer_with_committed_results()
    {
        var table = NewTable();
        var first = await _http.PostAsync($"/v1/tables/{table}/entries/claps/increment", null);
        var second = await _http.PostAsync($"/v1/tables/{table}/entries/claps/increment", Body("""{"delta":4}"""));
        var commit = await _http.PostAsync($"/v1/tables/{table}/commit", Body("""{"operations":[{"op":"put","key":"a","value":[1,2]},{"op":"delete","key":"claps"}]}"""));

        Assert.Equal(1, (await first.Content.ReadFromJsonAsync<KvEntryDto>(JsonSerializerOptions.Web))!.Value!.Value.GetInt64());
        Assert.Equal(5, (await second.Content.ReadFromJsonAsync<KvEntryDto>(JsonSerializerOptions.Web))!.Value!.Value.GetInt64());
        var result = await commit.Content.ReadFromJsonAsync<KvCommitResultDto>(JsonSerializerOptions.Web);
        Assert.Equal(4, result!.Revision);
        Assert.Equal(["put", "delete"], result.Entries.Select(e => e.Op));
    }

    [Fact]
    public async Task Health_and_readiness_report_database_and_cdc_state()
    {
        var health = await _http.GetAsync("/healthz");
        var ready = await _http.GetFromJsonAsync<JsonElement>("/readyz");
        var metrics = await _http.GetFromJsonAsync<Dictionary<string, double>>("/metrics");

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("healthy", ready.GetProperty("status").GetString());
        var data = ready.GetProperty("checks").GetProperty("kvstore").GetProperty("data");
        Assert.Equal("ok", data.GetProperty("database").GetString());
        Assert.Equal("streaming", data.GetProperty("cdc").GetString());
        Assert.NotNull(metrics);
    }

    [Fact]
    public async Task Writes_over_the_rate_limit_get_429()
    {
        await using var host = await RealtimeHost.StartAsync(fx.ConnectionString, o =>
        {
            o.WritesPerSecond = 1;
            o.WriteBurst = 3;
        }, waitForStream: false); // the fixture's host is the active CDC reader; this one stands by
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        var table = NewTable();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await http.PutAsync($"/v1/tables/{table}/entries/k", Body("""{"value":1}"""))).StatusCode);
        }

        await using var hub = new HubConnectionBuilder().WithUrl(host.BaseUrl + "/hubs/kv").Build();
        await hub.StartAsync();
        var hubErrors = 0;
        for (var i = 0; i < 6; i++)
        {
            try
            {
                await hub.InvokeAsync<KvEntryDto>("Put", table, "h", JsonValues.Of("1"), null);
            }
            catch (Microsoft.AspNetCore.SignalR.HubException ex) when (RealtimeHubTests.ErrorCode(ex) == "rate_limited")
            {
                hubErrors++;
            }
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        Assert.True(hubErrors > 0);
    }
}
