using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace KvStore.Samples.Tests;

/// <summary>The realtime database page (index.html) in two browser contexts.</summary>
[Collection("browser")]
public sealed class DatabasePageTests(DemoFixture fx)
{
    [Fact]
    public async Task Put_edit_delete_and_ttl_expiry_made_in_one_browser_appear_in_the_other()
    {
        var table = "notes-" + Guid.NewGuid().ToString("N")[..8];
        var (alice, aliceErrors) = await fx.OpenAsync($"/index.html?table={table}");
        var (bob, bobErrors) = await fx.OpenAsync($"/index.html?table={table}");
        await Expect(alice.Locator("#state")).ToHaveTextAsync("connected");
        await Expect(bob.Locator("#state")).ToHaveTextAsync("connected");
        await Expect(alice.Locator("#table-name")).ToHaveTextAsync(table);
        await Expect(bob.Locator("#table-name")).ToHaveTextAsync(table);

        // put
        await alice.FillAsync("#key", "greeting");
        await alice.FillAsync("#value", """{"text": "hello"}""");
        await alice.ClickAsync("#save");
        var bobRow = bob.Locator("tr[data-key='greeting']");
        await Expect(bobRow.Locator(".value")).ToHaveTextAsync("""{"text":"hello"}""");
        await Expect(bob.Locator("#subscribers")).ToHaveTextAsync("2");

        // edit (through the row's Edit button)
        await alice.Locator("tr[data-key='greeting'] button.edit").ClickAsync();
        await Expect(alice.Locator("#key")).ToHaveValueAsync("greeting");
        await alice.FillAsync("#value", """{"text": "hello again"}""");
        await alice.ClickAsync("#save");
        await Expect(bobRow.Locator(".value")).ToHaveTextAsync("""{"text":"hello again"}""");
        var revision = (await fx.Kv.GetAsync(table, "greeting"))!.Revision;
        await Expect(bobRow.Locator(".rev")).ToHaveTextAsync(revision.ToString());

        // TTL: shows a countdown, then the expiry service's tombstone removes it everywhere
        await alice.FillAsync("#key", "session");
        await alice.FillAsync("#value", "\"token\"");
        await alice.FillAsync("#ttl", "3");
        await alice.ClickAsync("#save");
        var bobSession = bob.Locator("tr[data-key='session']");
        await Expect(bobSession.Locator(".ttl")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^[1-3]s$"));
        await bob.SetViewportSizeAsync(1000, 600);
        await DemoFixture.ScreenshotAsync(bob, "database-page");
        await Expect(bobSession).ToHaveCountAsync(0, new() { Timeout = 20_000 });
        await Expect(alice.Locator("tr[data-key='session']")).ToHaveCountAsync(0);

        // delete
        await alice.Locator("tr[data-key='greeting'] button.delete").ClickAsync();
        await Expect(bobRow).ToHaveCountAsync(0);
        await Expect(bob.Locator("#empty")).ToBeVisibleAsync();
        Assert.Null(await fx.Kv.GetAsync(table, "greeting"));

        // phone width still works
        await bob.SetViewportSizeAsync(390, 844);
        await DemoFixture.ScreenshotAsync(bob, "database-page-phone");

        Assert.Empty(aliceErrors);
        Assert.Empty(bobErrors);
        await alice.Context.CloseAsync();
        await bob.Context.CloseAsync();
    }

    [Fact]
    public async Task After_a_host_restart_the_page_reconnects_resumes_and_shows_the_changes_made_while_away()
    {
        var table = "restart-" + Guid.NewGuid().ToString("N")[..8];
        await fx.Kv.PutAsync(table, "a", 1);
        var (page, _) = await fx.OpenAsync($"/index.html?table={table}");
        await Expect(page.Locator("#state")).ToHaveTextAsync("connected");
        await Expect(page.Locator("tr[data-key='a'] .value")).ToHaveTextAsync("1");

        await fx.StopHostAsync();
        await Expect(page.Locator("#state")).ToHaveTextAsync("reconnecting");
        await using (var writer = new KvStoreClient(new KvStoreOptions { ConnectionString = fx.ConnectionString }))
        {
            await writer.PutAsync(table, "a", 2);   // while no server runs
            await writer.PutAsync(table, "b", 3);
            await writer.DeleteAsync(table, "a");
            await writer.PutAsync(table, "c", 4);
        }

        await fx.StartHostAsync();
        await Expect(page.Locator("#state")).ToHaveTextAsync("resumed", new() { Timeout = 30_000 });
        await Expect(page.Locator("tbody tr")).ToHaveCountAsync(2);
        await Expect(page.Locator("tr[data-key='b'] .value")).ToHaveTextAsync("3");
        await Expect(page.Locator("tr[data-key='c'] .value")).ToHaveTextAsync("4");

        // and it is live again
        await fx.Kv.PutAsync(table, "d", 5);
        await Expect(page.Locator("tr[data-key='d'] .value")).ToHaveTextAsync("5");
        await DemoFixture.ScreenshotAsync(page, "database-page-resumed");
        await page.Context.CloseAsync();
    }
}
