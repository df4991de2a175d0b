using System.Diagnostics;
using System.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace KvStore.Bench.Hosting;

/// <summary>
/// The bench-only endpoints both benchmark hosts map: <c>GET /bench/stats</c> (memory, threads and
/// the thread-pool queue, sampled every 50 ms by a dedicated thread so that a saturated pool does not
/// hide its own queue) and <c>POST /bench/gc</c> (a full, compacting GC, for idle-memory readings).
/// Compiled into each host (linked file), never into a shipped package.
/// </summary>
internal static class BenchEndpoints
{
    private static readonly PoolSampler Sampler = new();

    public static void MapBenchEndpoints(this WebApplication app)
    {
        Sampler.Start();
        // ?reset=true starts a new sampling window after reading this one.
        app.MapGet("/bench/stats", (bool? reset) =>
        {
            var info = GC.GetGCMemoryInfo();
            using var self = Process.GetCurrentProcess();
            var window = Sampler.Read(reset == true);
            return Results.Json(new BenchStats(
                GC.GetTotalMemory(false),
                info.HeapSizeBytes,
                info.FragmentedBytes,
                info.TotalCommittedBytes,
                Environment.WorkingSet,
                ThreadPool.PendingWorkItemCount,
                window.Max,
                window.Average,
                window.Samples,
                ThreadPool.ThreadCount,
                self.Threads.Count,
                ThreadPool.CompletedWorkItemCount,
                self.TotalProcessorTime.TotalMilliseconds,
                GCSettings.IsServerGC,
                GC.CollectionCount(2)));
        });
        app.MapPost("/bench/gc", () =>
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            return Results.Json(new { gcTotalMemory = GC.GetTotalMemory(false) });
        });
    }

    /// <summary>Samples <see cref="ThreadPool.PendingWorkItemCount"/> on its own thread (not a pool thread).</summary>
    private sealed class PoolSampler
    {
        private readonly object _gate = new();
        private long _max;
        private double _sum;
        private long _samples;
        private int _started;

        public void Start()
        {
            if (Interlocked.Exchange(ref _started, 1) != 0)
            {
                return;
            }

            var thread = new Thread(Run) { IsBackground = true, Name = "bench pool sampler" };
            thread.Start();
        }

        public (long Max, double Average, long Samples) Read(bool reset)
        {
            lock (_gate)
            {
                var result = (_max, _samples == 0 ? 0 : _sum / _samples, _samples);
                if (reset)
                {
                    _max = 0;
                    _sum = 0;
                    _samples = 0;
                }

                return result;
            }
        }

        private void Run()
        {
            while (true)
            {
                var pending = ThreadPool.PendingWorkItemCount;
                lock (_gate)
                {
                    _max = Math.Max(_max, pending);
                    _sum += pending;
                    _samples++;
                }

                Thread.Sleep(50);
            }
        }
    }
}

/// <summary>What <c>GET /bench/stats</c> answers.</summary>
internal sealed record BenchStats(
    long GcTotalMemory,
    long GcHeapSize,
    long GcFragmented,
    long GcCommitted,
    long WorkingSet,
    long PoolQueue,
    long PoolQueueMax,
    double PoolQueueAvg,
    long PoolSamples,
    int PoolThreads,
    int Threads,
    long CompletedWorkItems,
    double CpuMs,
    bool ServerGc,
    int Gen2Collections);
