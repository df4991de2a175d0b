using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace KvStore.Samples.Tests;

/// <summary>The article page (article.html?id=...): claps over the hub, live for every reader of that article only.</summary>
[Collection("browser")]
public sealed class ArticlePageTests(DemoFixture fx)
{
    [Fact]
    public async Task Claps_in_one_browser_move_the_count_in_the_other_and_match_the_database_and_other_articles_see_nothing()
    {
        var id = "post-" + Guid.NewGuid().ToString("N")[..8];
        var other = "other-" + Guid.NewGuid().ToString("N")[..8];
        var (alice, aliceErrors) = await fx.OpenAsync($"/article.html?id={id}");
        var (bob, bobErrors) = await fx.OpenAsync($"/article.html?id={id}");
        var (carol, carolErrors) = await fx.OpenAsync($"/article.html?id={other}");
        foreach (var page in new[] { alice, bob, carol })
        {
            await Expect(page.Locator("#state")).ToHaveTextAsync("connected");
            await Expect(page.Locator("#clap")).ToBeEnabledAsync();
        }

        // a press shows +1 at once (in the same task, before any answer); the server's total follows
        var shown = await alice.EvaluateAsync<string[]>("""
            () => {
              const button = document.getElementById("clap");
              button.dispatchEvent(new PointerEvent("pointerdown", { button: 0, bubbles: true }));
              button.dispatchEvent(new PointerEvent("pointerup", { button: 0, bubbles: true }));
              const claps = document.getElementById("claps");
              return [claps.textContent, claps.dataset.confirmed];
            }
            """);
        Assert.Equal(["1", "0"], shown);
        await Expect(alice.Locator("#claps")).ToHaveAttributeAsync("data-confirmed", "1");
        await Expect(alice.Locator("#claps")).ToHaveTextAsync("1");
        await Expect(bob.Locator("#claps")).ToHaveTextAsync("1");

        for (var i = 0; i < 4; i++)
        {
            await alice.ClickAsync("#clap");
        }

        await Expect(bob.Locator("#claps")).ToHaveTextAsync("5");
        await Expect(alice.Locator("#claps")).ToHaveTextAsync("5");
        Assert.Equal(5, (await fx.Kv.GetAsync($"article:{id}", "claps"))!.Value.GetInt64());

        // holding the button claps repeatedly
        await bob.HoverAsync("#clap");
        await bob.Mouse.DownAsync();
        await bob.WaitForTimeoutAsync(1200);
        await bob.Mouse.UpAsync();
        await Expect(alice.Locator("#claps")).Not.ToHaveTextAsync("5");
        await Expect(alice.Locator("#claps")).Not.ToHaveTextAsync("6");
        await bob.WaitForTimeoutAsync(500); // let the last answers and frames arrive
        var total = (await fx.Kv.GetAsync($"article:{id}", "claps"))!.Value.GetInt64();
        Assert.True(total > 6, $"holding clapped only {total - 5} times");
        await Expect(alice.Locator("#claps")).ToHaveTextAsync(total.ToString());
        await Expect(bob.Locator("#claps")).ToHaveTextAsync(total.ToString());
        await Expect(alice.Locator("#subscribers")).ToHaveTextAsync("2");
        await bob.SetViewportSizeAsync(1000, 480);
        await DemoFixture.ScreenshotAsync(bob, "article-page");

        // a reader of another article saw nothing
        await Expect(carol.Locator("#claps")).ToHaveTextAsync("0");
        await Expect(carol.Locator("#subscribers")).ToHaveTextAsync("1");
        Assert.Null(await fx.Kv.GetAsync($"article:{other}", "claps"));

        Assert.Empty(aliceErrors);
        Assert.Empty(bobErrors);
        Assert.Empty(carolErrors);
        foreach (var page in new[] { alice, bob, carol })
        {
            await page.Context.CloseAsync();
        }
    }
}
