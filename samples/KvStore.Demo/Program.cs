using KvStore.Demo;

// Configuration: appsettings.json, then environment (ConnectionStrings__KvStore, Urls), then args
// (--urls http://0.0.0.0:8080 --ConnectionStrings:KvStore "...").
var app = DemoApp.Build(new WebApplicationOptions { Args = args });
await app.RunAsync();
